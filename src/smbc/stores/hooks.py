"""BigCommerce webhooks: the ONE list of scopes the app needs, their registration (idempotent), and
the receiver `POST /webhooks/bigcommerce` (verify, record an inbox row, enqueue, answer 200).

The receiver never calls a remote API: BigCommerce blocks a whole domain when fewer than 90 % of
deliveries succeed, so it answers fast and the workers do the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smbc.core.config import random_secret
from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.realtime.models import WebhookDelivery

log = logging.getLogger(__name__)
router = APIRouter()

WEBHOOK_PATH = "/webhooks/bigcommerce"
SECRET_HEADER = "X-Smbc-Webhook-Secret"  # noqa: S105 (a header name, not a secret)
MAX_BODY_BYTES = 256 * 1024

# Every scope the app subscribes to, in one place (reference §2.3; global scopes, channel read from
# the fetched resource).
NEEDED_SCOPES: tuple[str, ...] = (
    "store/customer/created",
    "store/customer/updated",
    "store/customer/deleted",
    "store/customer/address/created",
    "store/customer/address/updated",
    "store/customer/address/deleted",
    "store/subscriber/created",
    "store/subscriber/updated",
    "store/subscriber/deleted",
    "store/order/created",
    "store/order/statusUpdated",
    "store/order/refund/created",
    "store/cart/created",
    "store/cart/updated",
    "store/cart/deleted",
    "store/cart/converted",
    "store/channel/created",
    "store/channel/updated",
    "store/information/updated",
    "store/app/uninstalled",
)

DELIVERIES = Counter(
    "smbc_webhook_deliveries_total",
    "Webhook deliveries received, by result",
    ["result"],  # accepted | duplicate | dropped_unknown_store | dropped_uninstalled | unauthorized | ...
)


# -- delivery shapes (webhooks.v3.yml `webhook_callback_base` + the per-scope `data` of §2.3) ------


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")


class CustomerData(_Data):
    type: Literal["customer"]
    id: int


class AddressRef(_Data):
    customer_id: int


class AddressData(_Data):
    type: Literal["customer"]
    id: int
    address: AddressRef


class SubscriberData(_Data):
    type: Literal["subscriber"]
    id: int


class OrderData(_Data):
    type: Literal["order"]
    id: int


class StatusChange(_Data):
    previous_status_id: int
    new_status_id: int


class OrderStatusData(OrderData):
    status: StatusChange


class RefundRef(_Data):
    refund_id: int


class OrderRefundData(OrderData):
    refund: RefundRef


class CartData(_Data):
    type: Literal["cart"]
    id: str = Field(min_length=1, max_length=64)


class CartConvertedData(CartData):
    orderId: int  # BigCommerce writes this one in camelCase


class ChannelData(_Data):
    type: Literal["channel"]
    id: int


class StoreData(_Data):
    type: str | None = None


DATA_SCHEMAS: dict[str, type[_Data]] = {
    "store/customer/created": CustomerData,
    "store/customer/updated": CustomerData,
    "store/customer/deleted": CustomerData,
    "store/customer/address/created": AddressData,
    "store/customer/address/updated": AddressData,
    "store/customer/address/deleted": AddressData,
    "store/subscriber/created": SubscriberData,
    "store/subscriber/updated": SubscriberData,
    "store/subscriber/deleted": SubscriberData,
    "store/order/created": OrderData,
    "store/order/updated": OrderData,
    "store/order/archived": OrderData,
    "store/order/statusUpdated": OrderStatusData,
    "store/order/refund/created": OrderRefundData,
    "store/cart/created": CartData,
    "store/cart/updated": CartData,
    "store/cart/deleted": CartData,
    "store/cart/converted": CartConvertedData,
    "store/channel/created": ChannelData,
    "store/channel/updated": ChannelData,
    "store/information/updated": StoreData,
    "store/app/uninstalled": StoreData,
}


class DeliveryEnvelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    scope: str = Field(pattern=r"^store/[A-Za-z0-9_/]+$", max_length=96)
    store_id: str = Field(min_length=1, max_length=32)
    data: dict[str, Any]
    hash: str = Field(min_length=1, max_length=64)
    created_at: int = Field(ge=0)
    producer: str = Field(pattern=r"^stores/[A-Za-z0-9_-]+$", max_length=80)

    @property
    def store_hash(self) -> str:
        return self.producer.split("/", 1)[1]


class InvalidDelivery(ValueError):
    """The body is not a BigCommerce webhook delivery; the message says what is wrong."""


def _describe(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{prefix}{where}: {err['msg']}")
    return "; ".join(parts)


def parse_delivery(body: bytes) -> DeliveryEnvelope:
    """Validate the envelope and, for the scopes the app handles, the shape of `data`."""
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise InvalidDelivery("body is not JSON") from None
    if not isinstance(raw, dict):
        raise InvalidDelivery("body must be a JSON object")
    try:
        envelope = DeliveryEnvelope.model_validate(raw)
    except ValidationError as exc:
        raise InvalidDelivery(_describe(exc)) from None
    schema = DATA_SCHEMAS.get(envelope.scope)
    if schema is not None:
        try:
            schema.model_validate(envelope.data)
        except ValidationError as exc:
            raise InvalidDelivery(_describe(exc, "data.")) from None
    return envelope


def resource_id(scope: str, data: dict[str, Any]) -> str:
    """What the delivery is about: the customer of an address event, else `data.id`."""
    if scope.startswith("store/customer/address/"):
        return str((data.get("address") or {}).get("customer_id", ""))
    value = data.get("id")
    return "" if value is None else str(value)


# -- receiving -------------------------------------------------------------------------------


@dataclass
class Accepted:
    status: int
    result: str
    message: str = ""
    delivery_id: int | None = None


def accept_delivery(db: Database, body: bytes, secret: str | None) -> Accepted:
    """Verify and record one delivery; never calls a remote API. Enqueueing is the caller's job."""
    try:
        envelope = parse_delivery(body)
    except InvalidDelivery as exc:
        return Accepted(400, "invalid", str(exc))
    try:
        with db.session() as session:  # one short transaction: look the store up, insert the row
            found = session.execute(
                select(Store.id, Store.status, Store.webhook_secret).where(Store.hash == envelope.store_hash)
            ).first()
            if found is None:  # counted (smbc_webhook_deliveries_total) and logged: no store to file it under
                log.info("webhook %s for unknown store %s dropped", envelope.scope, envelope.store_hash)
                return Accepted(200, "dropped_unknown_store")
            store_pk, status, expected = found.id, found.status, found.webhook_secret or ""
            installed = status == "installed"
            if installed and not (expected and hmac.compare_digest(expected, secret or "")):
                return Accepted(401, "unauthorized", "missing or wrong webhook secret")
            if not installed:
                log.info("webhook %s for uninstalled store %s dropped", envelope.scope, envelope.store_hash)
                return Accepted(200, "dropped_uninstalled")
            row = WebhookDelivery(
                store_id=store_pk,
                scope=envelope.scope,
                hash=envelope.hash,
                created_at=envelope.created_at,
                resource_id=resource_id(envelope.scope, envelope.data),
                payload=envelope.model_dump(),
                source="webhook",
            )
            session.add(row)
            session.flush()
            delivery_id = row.id
    except IntegrityError:
        return Accepted(200, "duplicate")
    return Accepted(200, "accepted", delivery_id=delivery_id)


def accept_and_enqueue(db: Database, body: bytes, secret: str | None) -> Accepted:
    from smbc.realtime.processing import enqueue_delivery

    outcome = accept_delivery(db, body, secret)
    if outcome.delivery_id is not None:
        enqueue_delivery(outcome.delivery_id)
    return outcome


async def _read_limited(request: Request) -> bytes | None:
    """The body, or None once it passes MAX_BODY_BYTES (no matter what Content-Length claims)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(WEBHOOK_PATH)
async def receive_webhook(request: Request) -> JSONResponse:
    body = await _read_limited(request)
    if body is None:
        DELIVERIES.labels("too_large").inc()
        return JSONResponse({"error": f"body over {MAX_BODY_BYTES} bytes"}, status_code=413)
    db: Database = request.app.state.runtime.db
    outcome = await run_in_threadpool(accept_and_enqueue, db, body, request.headers.get(SECRET_HEADER))
    DELIVERIES.labels(outcome.result).inc()
    if outcome.status >= 400:
        return JSONResponse({"error": outcome.message}, status_code=outcome.status)
    return JSONResponse({"result": outcome.result}, status_code=outcome.status)


# -- registration ----------------------------------------------------------------------------


@dataclass
class RegistrationResult:
    created: list[str] = field(default_factory=list)
    reenabled: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.reenabled or self.updated)


def webhook_destination(app_url: str) -> str:
    return app_url.rstrip("/") + WEBHOOK_PATH


def ensure_webhook_secret(store: Store) -> str:
    if not store.webhook_secret:
        store.webhook_secret = random_secret()
    return store.webhook_secret


def sync_hooks(client: Any, destination: str, secret: str) -> RegistrationResult:
    """Make `/v3/hooks` hold one active hook per needed scope, pointing at us with our header."""
    result = RegistrationResult()
    headers = {SECRET_HEADER: secret}
    existing: dict[str, list[dict[str, Any]]] = {}
    for hook in client.hooks():
        existing.setdefault(hook.get("scope", ""), []).append(hook)
    for scope in NEEDED_SCOPES:
        candidates = existing.get(scope, [])
        hook = next((h for h in candidates if h.get("destination") == destination), None)
        hook = hook or (candidates[0] if candidates else None)
        if hook is None:
            try:
                client.create_hook(
                    {"scope": scope, "destination": destination, "is_active": True, "headers": headers}
                )
            except RemoteCallError as exc:
                # One hook per scope and destination: a concurrent set-up may have created it first.
                hook = _created_meanwhile(client, exc, scope, destination)
                if (hook.get("headers") or {}) != headers or not hook.get("is_active", False):
                    client.update_hook(hook["id"], {"headers": headers, "is_active": True})
                result.unchanged.append(scope)
                continue
            result.created.append(scope)
            continue
        wrong_target = hook.get("destination") != destination or (hook.get("headers") or {}) != headers
        if wrong_target:
            fields = {"destination": destination, "headers": headers, "is_active": True}
            client.update_hook(hook["id"], fields)
            result.updated.append(scope)
        elif not hook.get("is_active", False):
            client.update_hook(hook["id"], {"is_active": True})
            result.reenabled.append(scope)
        else:
            result.unchanged.append(scope)
    return result


def _created_meanwhile(client: Any, error: RemoteCallError, scope: str, destination: str) -> dict[str, Any]:
    """The hook another worker created for (scope, destination); re-raise when there is none."""
    if error.outcome is not Outcome.INVALID:
        raise error
    for hook in client.hooks():
        if hook.get("scope") == scope and hook.get("destination") == destination:
            return hook
    raise error


def register_webhooks(session: Session, store: Store, client: Any = None) -> RegistrationResult:
    """Idempotent: creates missing hooks, re-enables deactivated ones, fixes destination/headers.

    Called by the set-up job and by reconciliation; the attempts are recorded as RemoteCall rows."""
    from smbc.bigcommerce.client import CallBuffer, for_store
    from smbc.core.runtime import get_runtime

    settings = get_runtime().settings
    secret = ensure_webhook_secret(store)
    calls = CallBuffer()
    if client is None:
        client = for_store(store, recorder=calls, context="webhooks")
    try:
        return sync_hooks(client, webhook_destination(settings.app_url), secret)
    finally:
        calls.flush(session)


def payload_digest(payload: dict[str, Any]) -> str:
    """SHA-1 of a JSON payload, the way BigCommerce fills `hash` (used for synthetic deliveries)."""
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha1(encoded, usedforsecurity=False).hexdigest()
