"""How BigCommerce writes dates and money: v3 dates are ISO-8601 (`2024-05-14T09:34:00Z`), v2 dates are
RFC-2822 in UTC (`Wed, 10 Jan 2018 21:05:30 +0000`); v2 money is a decimal string with four places
(`"361.9500"`), v3 money a JSON number."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from smbc.sandbox.bigcommerce.state import Json

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc2822(dt: datetime | None) -> str:
    """`Wed, 10 Jan 2018 21:05:30 +0000` (what email.utils.format_datetime gives, 5x faster: pages of 250)."""
    if dt is None:
        return ""
    u = dt.astimezone(UTC)
    return f"{DAYS[u.weekday()]}, {u.day:02d} {MONTHS[u.month - 1]} {u.year} {u:%H:%M:%S} +0000"


def v2_money(value: Decimal) -> str:
    return f"{value:.4f}"


def v3_money(value: Decimal) -> float:
    return float(value)


def link(api_base: str, path: str) -> Json:
    """A v2 sub-resource given as a link instead of inline (`{url, resource}`)."""
    return {"url": f"{api_base}{path}", "resource": path}
