"""The business rules of syncing, as pure functions: e-mails and ignored domains, tags, consent
flags, which events an order status means, and the CART event window. No I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any

# Deliberately simple: one @, no spaces, a dot in the domain. SALESmanago refuses worse ones anyway.
_EMAIL = re.compile(r"^[^@\s,;<>\"']+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$")

ORDER_STATUS_CANCELLED = 5
ORDER_STATUS_INCOMPLETE = 0


# BigCommerce's consent name for the newsletter, on customers and subscribers.
NEWSLETTER = "marketing_newsletter"


class EventKind(StrEnum):
    PURCHASE = "PURCHASE"
    CANCELLATION = "CANCELLATION"
    RETURN = "RETURN"
    CART = "CART"


def normalize_email(email: Any) -> str:
    """The e-mail as a key (trimmed, lower case); "" for anything that is not a text."""
    return email.strip().lower() if isinstance(email, str) else ""


def email_problem(email: str | None, ignored_domains: Iterable[str]) -> str | None:
    """Why nothing may be sent for this e-mail (None when it is fine)."""
    address = normalize_email(email)
    if not address:
        return "no e-mail address"
    if len(address) > 254 or not _EMAIL.match(address):
        return f"invalid e-mail address {address!r}"
    domain = address.rsplit("@", 1)[1]
    ignored = {d.strip().lower().lstrip("@") for d in ignored_domains if d.strip()}
    if domain in ignored:
        return f"ignored e-mail domain {domain}"
    return None


def normalize_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Upper case, spaces to `_`, no empties or repeats, at most 255 characters."""
    if isinstance(tags, tuple):
        return _normalized_tags(tags)
    return _normalize_tags(tags)


@lru_cache(maxsize=256)  # a store sends a few sets of tags (its settings'), with every contact
def _normalized_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    return _normalize_tags(tags)


def _normalize_tags(tags: Iterable[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for tag in tags:
        clean = "_".join(tag.strip().upper().split())[:255]
        if clean:
            seen.setdefault(clean, None)
    return tuple(seen)


def lang_code(locale: Any) -> str | None:
    """`en-US` / `pl_PL` / `de` -> `EN` / `PL` / `DE`; None for anything else."""
    if not isinstance(locale, str) or not locale:
        return None
    return _locale_lang(locale)


@lru_cache(maxsize=256)  # a store's orders carry a handful of locales; an export reads two per order
def _locale_lang(locale: str) -> str | None:
    code = re.split(r"[-_]", locale.strip())[0]
    return code[:2].upper() if len(code) >= 2 and code[:2].isalpha() else None


def store_language(store_info: Mapping[str, Any] | None) -> str | None:
    """The store's language as SALESmanago wants it (`EN`), from BigCommerce's store information."""
    if not isinstance(store_info, Mapping):
        return None
    return lang_code(store_info.get("language") or store_info.get("locale"))


@dataclass(frozen=True)
class ConsentFlags:
    force_opt_in: bool = False
    force_opt_out: bool = False

    @property
    def changes(self) -> bool:
        return self.force_opt_in or self.force_opt_out


NO_CONSENT_CHANGE = ConsentFlags()


def consent_flags(subscribed_now: bool | None, last_sent: bool | None) -> ConsentFlags:
    """Never opt anyone in by accident: only an explicit subscription opts in, only a known opt-in
    that is withdrawn opts out; anything else leaves SALESmanago's status alone (all false)."""
    if subscribed_now is True and last_sent is not True:
        return ConsentFlags(force_opt_in=True)
    if subscribed_now is False and last_sent is True:
        return ConsentFlags(force_opt_out=True)
    return NO_CONSENT_CHANGE


def order_event_kind(status_id: int, purchase_statuses: Iterable[int]) -> EventKind | None:
    """What an order in this status means: PURCHASE in a purchase status (never Incomplete),
    CANCELLATION when cancelled (sent only after a PURCHASE), otherwise nothing."""
    if status_id == ORDER_STATUS_INCOMPLETE:
        return None
    if status_id in set(purchase_statuses):
        return EventKind.PURCHASE
    if status_id == ORDER_STATUS_CANCELLED:
        return EventKind.CANCELLATION
    return None


# Setting `cart_event_window` -> how long after the last change a cart change still updates the
# open CART event (a sliding window: every send starts it again).
CART_WINDOWS: dict[str, timedelta | None] = {
    "always_new": timedelta(0),
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "4h": timedelta(hours=4),
    "12h": timedelta(hours=12),
    "7d": timedelta(days=7),
    "always_update": None,  # never expires
}


def cart_update_keeps_event(
    window: str, open_event_id: str | None, closed: bool, last_update: datetime | None, now: datetime
) -> bool:
    """True: the change updates the open CART event; False: it starts a new one."""
    if not open_event_id or closed or last_update is None:
        return False
    length = CART_WINDOWS[window]
    if length is None:
        return True
    return now - last_update < length
