"""The store's BigCommerce webhooks: the ONE list of scopes the app needs and their registration
(idempotent: creates what is missing, re-enables deactivated hooks, fixes destination and headers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from smbc.core.config import random_secret
from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.db.session import Database

WEBHOOK_PATH = "/webhooks/bigcommerce"
SECRET_HEADER = "X-Smbc-Webhook-Secret"  # noqa: S105 (a header name, not a secret)

# Every scope the app subscribes to, in one place (global scopes, channel read from
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
    "store/product/created",
    "store/product/updated",
    "store/product/deleted",
    "store/product/inventory/updated",
    "store/product/inventory/order/updated",
    "store/sku/inventory/updated",
    "store/sku/inventory/order/updated",
)


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


def register_webhooks(db: Database, store_id: int, client: Any) -> RegistrationResult | None:
    """Idempotent: creates missing hooks, re-enables deactivated ones, fixes destination/headers.

    The store's secret is kept in a short transaction of its own; the calls come after it, recorded
    by `client`'s recorder (the caller writes them). None when the store is not installed."""
    with db.session() as session:
        store = session.get(Store, store_id)
        if store is None or not store.installed:
            return None
        secret = ensure_webhook_secret(store)
    return sync_hooks(client, webhook_destination(get_runtime().settings.app_url), secret)
