"""Carts of anonymous visitors linked to their SALESmanago contact id (the `smclient` cookie).

The storefront script posts the link (web/storefront.py checks the request); the realtime CART
processing reads it with `linked_contact_id` for a cart that has no e-mail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from smbc.db.models import Store
from smbc.db.session import insert_ignoring_conflicts
from smbc.monitoring.models import CartLink

CART_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# SALESmanago contact ids are UUIDs; accept any id of that alphabet, bounded, in case the format varies.
CONTACT_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{7,63}")
STORE_HASH = re.compile(r"[0-9A-Za-z_-]{1,64}")
MAX_CHANNEL_ID = 2**31 - 1
ALREADY_LINKED = "cart_id: this cart is linked to another visitor already; the first link is kept."


class CartLinkError(ValueError):
    """A cart-link request that is refused; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class CartLinkRequest:
    store: str
    channel_id: int
    cart_id: str
    smclient: str


def parse_cart_link(payload: Any) -> CartLinkRequest:
    """Validate the posted JSON; every refusal names the field."""
    if not isinstance(payload, dict):
        raise CartLinkError(400, "The body must be a JSON object.")
    store = payload.get("store")
    if not isinstance(store, str) or not STORE_HASH.fullmatch(store):
        raise CartLinkError(400, "store: must be the store hash.")
    channel_id = payload.get("channel_id")
    if (
        isinstance(channel_id, bool)
        or not isinstance(channel_id, int)
        or not 1 <= channel_id <= MAX_CHANNEL_ID
    ):
        raise CartLinkError(400, "channel_id: must be a channel id (a positive whole number).")
    cart_id = payload.get("cart_id")
    if not isinstance(cart_id, str) or not CART_ID.fullmatch(cart_id):
        raise CartLinkError(400, "cart_id: must be a cart id (a UUID).")
    smclient = payload.get("smclient")
    if not isinstance(smclient, str) or not CONTACT_ID.fullmatch(smclient):
        raise CartLinkError(400, "smclient: must be a SALESmanago contact id.")
    return CartLinkRequest(store=store, channel_id=channel_id, cart_id=cart_id.lower(), smclient=smclient)


def origin_of(url: str) -> str | None:
    """`https://Shop.example.com:443/path` -> `https://shop.example.com` (as browsers send Origin)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


class StorefrontStore(Protocol):
    """What the cart-link checks read of a store: a row of these columns (never its secrets)."""

    id: int
    sites: list[dict[str, Any]] | None
    info: dict[str, Any] | None
    channels: list[dict[str, Any]] | None


# Only the columns the checks need: loading a whole Store would decrypt its secrets on every request.
_STOREFRONT_COLUMNS = (Store.id, Store.sites, Store.info, Store.channels)


def storefront_origins(store: StorefrontStore | Store) -> set[str]:
    """Every origin the store's storefronts are served from: its sites' URLs and the store's own."""
    urls: list[str] = []
    for site in store.sites or []:
        if isinstance(site.get("url"), str):
            urls.append(site["url"])
        for entry in site.get("urls") or []:
            if isinstance(entry, dict) and isinstance(entry.get("url"), str):
                urls.append(entry["url"])
    for key in ("secure_url", "domain"):
        value = (store.info or {}).get(key)
        if isinstance(value, str) and value:
            urls.append(value if "://" in value else "https://" + value)
    return {origin for origin in map(origin_of, urls) if origin}


def find_installed_store(session: Session, store_hash: str) -> StorefrontStore | None:
    """The installed store with this hash (the columns the cart-link checks read), or None."""
    query = select(*_STOREFRONT_COLUMNS).where(Store.hash == store_hash, Store.status == "installed")
    return session.execute(query).first()  # type: ignore[return-value]


def any_installed_store_serves(session: Session, origin: str) -> bool:
    """Whether any installed store has a storefront on this origin (its sites and info columns only)."""
    rows = session.execute(select(*_STOREFRONT_COLUMNS).where(Store.status == "installed"))
    return any(origin in storefront_origins(row) for row in rows)  # type: ignore[arg-type]


def check_channel(store: StorefrontStore, channel_id: int) -> None:
    known = {c.get("id") for c in store.channels or []}
    if known and channel_id not in known:
        raise CartLinkError(422, "channel_id: not a channel of this store.")


def link_cart(session: Session, store: StorefrontStore, request: CartLinkRequest) -> bool:
    """Link the cart to the visitor's contact id; True when the link is new. The first link is kept:
    the same contact again changes nothing, another contact is refused (409), so nobody who learns a
    cart id can move its CART events to a contact of theirs."""
    linked = linked_contact_id(session, store.id, request.cart_id)
    if linked is None:
        row = {
            "store_id": store.id,
            "cart_id": request.cart_id,
            "channel_id": request.channel_id,
            "contact_id": request.smclient,
        }
        insert_ignoring_conflicts(session, CartLink.__table__, [row], ["store_id", "cart_id"])
        if linked_contact_id(session, store.id, request.cart_id) == request.smclient:
            return True
    elif linked == request.smclient:
        return False
    raise CartLinkError(
        409, "cart_id: this cart is already linked to another visitor; the first link is kept."
    )


def linked_contact_id(session: Session, store_id: int, cart_id: str) -> str | None:
    """The SALESmanago contact id linked to this cart (`stores.id`, cart UUID), or None."""
    return session.scalar(
        select(CartLink.contact_id).where(CartLink.store_id == store_id, CartLink.cart_id == cart_id.lower())
    )
