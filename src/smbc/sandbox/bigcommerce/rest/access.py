"""Who may call a REST route: a valid `X-Auth-Token` for the store (else 401) holding one of the
route's OAuth scopes (else 403). Routes get a `StoreCall` through the FastAPI dependency `authorized`."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from fastapi import Request

from smbc.sandbox.bigcommerce.api import ApiError, fake_of
from smbc.sandbox.bigcommerce.state import Json, StoreState, Token

if TYPE_CHECKING:
    from smbc.sandbox.bigcommerce.fake import FakeBigCommerce

K = TypeVar("K")
R = TypeVar("R")

# Resource family -> (modify scope, read-only scope), as each of BigCommerce's specs declares them.
SCOPES: dict[str, tuple[str, str]] = {
    "information": ("store_v2_information", "store_v2_information_read_only"),
    "channels": ("store_channel_settings", "store_channel_settings_read_only"),
    "sites": ("store_sites", "store_sites_read_only"),
    "customers": ("store_v2_customers", "store_v2_customers_read_only"),
    "orders": ("store_v2_orders", "store_v2_orders_read_only"),
    "transactions": ("store_v2_transactions", "store_v2_transactions_read_only"),
    "carts": ("store_cart", "store_cart_read_only"),
    "content": ("store_v2_content", "store_v2_content_read_only"),
    "checkout_content": ("store_content_checkout", "store_content_checkout_read_only"),
    "products": ("store_v2_products", "store_v2_products_read_only"),
}


def has_scope(token: Token, families: tuple[str, ...], write: bool) -> bool:
    """Whether the token may read (or, with `write`, change) one of the resource families."""
    for family in families:
        modify, read_only = SCOPES[family]
        if modify in token.scopes or (not write and read_only in token.scopes):
            return True
    return False


@dataclass(frozen=True)
class StoreCall:
    """One authorized REST request against one store."""

    fake: FakeBigCommerce
    store: StoreState
    token: Token
    request: Request
    query: dict[str, str]

    @property
    def lock(self) -> threading.RLock:
        return self.fake.lock

    async def json_object(self) -> Json:
        try:
            body = await self.request.json()
        except ValueError:
            raise ApiError(400, "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise ApiError(422, "The request body must be a JSON object")
        return body


def authorized(*families: str, write: bool = False) -> Callable[[Request, str], Awaitable[StoreCall]]:
    """A dependency admitting tokens with one of the families' scopes (any valid token when none given)."""

    async def store_call(request: Request, store_hash: str) -> StoreCall:
        fake = fake_of(request)
        store = fake.store(store_hash)
        value = request.headers.get("x-auth-token", "")
        token = store.tokens.get(value) if value else None
        if token is None:
            raise ApiError(
                401, "You are not authorized to access this resource (missing or invalid X-Auth-Token)"
            )
        if families and not has_scope(token, families, write):
            needed = " or ".join(
                SCOPES[f][0] if write else f"{SCOPES[f][1]}/{SCOPES[f][0]}" for f in families
            )
            raise ApiError(403, f"You don't have a required scope to access the endpoint (needs {needed})")
        return StoreCall(fake, store, token, request, dict(request.query_params))

    return store_call


def found(rows: Mapping[K, R], key: K, message: str) -> R:
    """`rows[key]`, or a 404 with `message`."""
    row = rows.get(key)
    if row is None:
        raise ApiError(404, message)
    return row


class ClientOwned(Protocol):
    @property
    def client_id(self) -> str: ...


Owned = TypeVar("Owned", bound=ClientOwned)


def owned(rows: Mapping[K, Owned], key: K, token: Token, message: str) -> Owned:
    """`rows[key]` if the token's API client created it (scripts and webhooks are private to their
    client), or a 404 with `message`."""
    row = rows.get(key)
    if row is None or row.client_id != token.client_id:
        raise ApiError(404, message)
    return row
