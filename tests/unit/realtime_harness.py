"""A small in-memory BigCommerce (httpx.MockTransport) and a SALESmanago port for processing tests.

Only what the processing reads; the end-to-end suites use the real sandbox instead."""

from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from smbc.bigcommerce import client as bc_client
from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.context import SalesmanagoPort
from smbc.realtime.clients import Clients
from smbc.settings.models import StoreSettingsRow
from smbc.settings.store_settings import StoreSettings


def placed_order(
    order_id: int,
    *,
    email: str = "bo@example.com",
    quantity: int = 2,
    **fields: Any,
) -> dict[str, Any]:
    """A guest's order of mugs as `/v2/orders/{id}` answers it (status 11, awaiting fulfillment)."""
    item = {"id": 1, "product_id": 111, "variant_id": 5, "sku": "MUG", "name": "Mug", "quantity": quantity}
    return {
        "id": order_id,
        "status_id": 11,
        "customer_id": 0,
        "channel_id": 1,
        "date_created": "Tue, 06 Jan 2026 10:00:00 +0000",
        "date_modified": "Tue, 06 Jan 2026 11:00:00 +0000",
        "total_inc_tax": "20.00",
        "currency_code": "USD",
        "billing_address": {"first_name": "Bo", "last_name": "Buyer", "email": email},
        "consignments": [{"shipping": [{"shipping_method": "Flat", "line_items": [item]}]}],
        "refunded_amount": "0.0000",
        **fields,
    }


@dataclass
class MiniBigCommerce:
    customers: dict[int, dict[str, Any]] = field(default_factory=dict)
    subscribers: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    carts: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: list[dict[str, Any]] = field(default_factory=list)
    hooks: list[dict[str, Any]] = field(default_factory=list)
    store: dict[str, Any] = field(default_factory=lambda: {"id": "1025646", "language": "en"})
    channels: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"id": 1, "type": "storefront", "platform": "bigcommerce", "status": "active"}
        ]
    )
    sites: list[dict[str, Any]] = field(default_factory=list)
    requests: list[httpx.Request] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def paths(self) -> list[str]:
        return [r.url.path.split("/stores/", 1)[1].split("/", 1)[1] for r in self.requests]

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
            if self.fail_next:
                return httpx.Response(self.fail_next.pop(0), json={"title": "injected"})
        path = "/" + request.url.path.split("/stores/", 1)[1].split("/", 1)[1]
        params = request.url.params
        if path == "/v3/customers":
            ids = [int(i) for i in params.get("id:in", "").split(",") if i]
            data = (
                [self.customers[i] for i in ids if i in self.customers]
                if ids
                else list(self.customers.values())
            )
            return httpx.Response(
                200, json={"data": data, "meta": {"pagination": {"current_page": 1, "total_pages": 1}}}
            )
        if path == "/v3/customers/subscribers":
            ids = [int(i) for i in params.get("id:in", "").split(",") if i]
            data = (
                [self.subscribers[i] for i in ids if i in self.subscribers]
                if ids
                else list(self.subscribers.values())
            )
            return httpx.Response(
                200, json={"data": data, "meta": {"pagination": {"current_page": 1, "total_pages": 1}}}
            )
        if path.startswith("/v2/orders/") and path.endswith("/products"):
            order = self.orders.get(int(path.split("/")[3]))
            return httpx.Response(200, json=order["_products"]) if order else httpx.Response(404)
        if path.startswith("/v2/orders/"):
            order = self.orders.get(int(path.split("/")[3]))
            if order is None:
                return httpx.Response(404, json=[{"status": 404, "message": "not found"}])
            return httpx.Response(200, json={k: v for k, v in order.items() if not k.startswith("_")})
        if path == "/v2/orders":
            start = int(params.get("min_id", 0))
            rows = [
                {k: v for k, v in o.items() if not k.startswith("_")}
                for i, o in sorted(self.orders.items())
                if i >= start
            ][: int(params.get("limit", 50))]
            return httpx.Response(200, json=rows) if rows else httpx.Response(204)
        if path == "/v3/orders/payment_actions/refunds":
            order_ids = {int(i) for i in params.get("order_id:in", "").split(",") if i}
            data = [r for r in self.refunds if not order_ids or r["order_id"] in order_ids]
            return httpx.Response(200, json={"data": data, "meta": {}})
        if path.startswith("/v3/carts/"):
            cart = self.carts.get(path.split("/")[3])
            return (
                httpx.Response(200, json={"data": cart})
                if cart
                else httpx.Response(404, json={"title": "gone"})
            )
        if path == "/v2/store":
            return httpx.Response(200, json=self.store)
        if path in ("/v3/channels", "/v3/sites"):
            data = self.channels if path == "/v3/channels" else self.sites
            return httpx.Response(
                200, json={"data": data, "meta": {"pagination": {"current_page": 1, "total_pages": 1}}}
            )
        if path == "/v3/hooks" and request.method == "GET":
            return httpx.Response(200, json={"data": self.hooks, "meta": {}})
        if path == "/v3/hooks" and request.method == "POST":
            hook = {"id": len(self.hooks) + 1, **json.loads(request.content)}
            self.hooks.append(hook)
            return httpx.Response(200, json={"data": hook})
        if path.startswith("/v3/hooks/") and request.method == "PUT":
            hook = next(h for h in self.hooks if h["id"] == int(path.split("/")[3]))
            hook.update(json.loads(request.content))
            return httpx.Response(200, json={"data": hook})
        return httpx.Response(404, json={"title": f"no route {path}"})


# The HTTP status SALESmanago answers a failure of each outcome with, as the fakes inject it.
ANSWER_STATUS = {
    Outcome.RETRY: 503,
    Outcome.RATE_LIMITED: 429,
    Outcome.CREDENTIALS: 401,
    Outcome.INVALID: 400,
    Outcome.IGNORED: 404,
    Outcome.SUCCESS: 200,
}


@dataclass
class FakeSalesmanagoPort:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failures: list[RemoteCallError] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def _call(self, name: str, payload: dict[str, Any]) -> str:
        with self.lock:
            if self.failures:
                raise self.failures.pop(0)
            self.calls.append((name, payload))
            return f"{name}-{next(self._ids)}"

    def upsert_contact(self, payload: dict[str, Any]) -> str:
        return self._call("upsert", payload)

    def integration_upsert(self, contact_payload: dict[str, Any], event: dict[str, Any]) -> tuple[str, str]:
        ident = self._call("integration", {"contact": contact_payload, "event": event})
        return f"contact-{ident}", f"event-{ident}"

    def add_event(self, event: dict[str, Any]) -> str:
        return self._call("add_event", event)

    def update_event(self, event: dict[str, Any]) -> str:
        self._call("update_event", event)
        return event["contactEvent"]["eventId"]

    def delete_contact(self, email: str) -> None:
        self._call("delete", {"email": email})

    def contact_basic(self, emails: list[str]) -> list[dict[str, Any]]:
        self._call("basic", {"email": emails})
        return []

    def named(self, name: str) -> list[dict[str, Any]]:
        return [p for n, p in self.calls if n == name]

    def fail(
        self, outcome: Outcome, message: str = "injected", times: int = 1, *, answered: bool = True
    ) -> None:
        """The next `times` calls fail with an answer of that outcome's status, or, `answered=False`,
        with no answer at all after the request left (a read timeout: SALESmanago may have it)."""
        status = ANSWER_STATUS[outcome] if answered else None
        self.failures.extend(RemoteCallError(outcome, message, status=status) for _ in range(times))


def salesmanago_requests(calls: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The calls a `FakeSalesmanagoPort` took, as SALESmanago receives them: a contact upsert with its
    consent flags ("contact/upsert forceOptIn"), an event with its type ("addContactExtEvent CART");
    an integration upsert is both, a contact upsert and then an event."""

    def contact(payload: dict[str, Any]) -> str:
        flags = [f for f in ("forceOptIn", "forceOptOut", "useApiDoubleOptIn") if payload.get(f)]
        return " ".join(["contact/upsert", *flags])

    def event(verb: str, payload: dict[str, Any]) -> str:
        return f"{verb} {payload['contactEvent']['contactExtEventType']}"

    named: list[str] = []
    for name, payload in calls:
        if name == "upsert":
            named.append(contact(payload))
        elif name == "integration":
            named += [contact(payload["contact"]), event("addContactExtEvent", payload["event"])]
        elif name in ("add_event", "update_event"):
            verb = "addContactExtEvent" if name == "add_event" else "updateContactExtEvent"
            named.append(event(verb, payload))
        elif name == "delete":
            named.append("contact/delete")
        elif name == "basic":
            named.append("contact/basic")
        else:
            named.append(name)
    return named


def fake_clients(bc: MiniBigCommerce, sm: SalesmanagoPort) -> Clients:
    """Clients for `process_delivery`: the real BigCommerce client over `bc`, and `sm` itself."""
    http = httpx.Client(transport=httpx.MockTransport(bc.handler))
    return Clients(
        bigcommerce=lambda store, calls: bc_client.for_store(
            store, http=http, recorder=calls, context=calls.context
        ),
        salesmanago=lambda session, store, calls: sm,
    )


def save_settings(db: Database, store_id: int, settings: StoreSettings) -> None:
    """Store the settings as the dashboard would have saved them (no validation: tests set anything)."""
    with db.session() as session:
        row = session.scalar(select(StoreSettingsRow).where(StoreSettingsRow.store_id == store_id))
        if row is None:
            row = StoreSettingsRow(store_id=store_id)
            session.add(row)
        row.data = settings.model_dump(mode="json")


def add_store(session: Session, store_hash: str) -> Store:
    """An installed store's row, flushed so that its id is known."""
    store = Store(hash=store_hash, access_token="token", webhook_secret="x", sites=[])
    session.add(store)
    session.flush()
    return store
