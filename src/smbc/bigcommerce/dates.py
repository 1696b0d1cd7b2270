"""BigCommerce's two date forms, read without ever raising on a value of the wrong shape."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

# The form /v2 sends every date in (`Tue, 20 Nov 2012 00:00:00 +0000`), read without the general
# parser: an export reads two per order. Anything else goes through `parsedate_to_datetime`.
_RFC_2822 = re.compile(
    r"(?:[A-Z][a-z]{2}, )?(\d{1,2}) ([A-Z][a-z]{2}) ([12]\d{3}) (\d{2}):(\d{2}):(\d{2}) \+(\d{2})(\d{2})"
)
_MONTHS = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


def parse_date(value: Any) -> datetime | None:
    """RFC-2822 (v2: `Tue, 20 Nov 2012 00:00:00 +0000`) or ISO-8601 (v3); None for anything else,
    a number, a list or an unreadable text alike."""
    if not isinstance(value, str):
        return None
    return _parse_text(value)


# An order's dates are read when its answer is checked and again when it is mapped; datetimes are
# immutable, so the second reading can share the first's.
@lru_cache(maxsize=4096)
def _parse_text(value: str) -> datetime | None:
    text = value.strip()
    if not text:
        return None
    usual = _usual_rfc_2822(text)
    if usual is not None:
        return usual
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _usual_rfc_2822(text: str) -> datetime | None:
    """The date `parsedate_to_datetime` gives for the usual /v2 form; None for any other text."""
    # `Tue, 20 Nov 2012 00:00:00 +0000`: the day and zone read once (orders of a day share them),
    # the clock by position; anything else is matched as a whole below.
    if len(text) == 31 and text[16] == " " and text[19] == ":" and text[22] == ":" and text[25] == " ":
        hour, minute, second = text[17:19], text[20:22], text[23:25]
        clock = hour + minute + second
        if clock.isascii() and clock.isdecimal() and hour < "24" and minute < "60" and second < "60":
            midnight = _midnight(text[:16], text[25:])
            if midnight is None:
                return None
            return midnight.replace(hour=int(hour), minute=int(minute), second=int(second))
    return _matched_rfc_2822(text)


@lru_cache(maxsize=1024)
def _midnight(day: str, zone: str) -> datetime | None:
    return _matched_rfc_2822(f"{day} 00:00:00{zone}")


def _matched_rfc_2822(text: str) -> datetime | None:
    match = _RFC_2822.fullmatch(text)
    month = _MONTHS.get(match.group(2)) if match is not None else None
    if match is None or month is None:
        return None
    day, _, year, hour, minute, second, offset_h, offset_m = match.groups()
    offset = timedelta(hours=int(offset_h), minutes=int(offset_m))
    try:
        zone = UTC if not offset else timezone(offset)
        return datetime(int(year), month, int(day), int(hour), int(minute), int(second), tzinfo=zone)
    except ValueError:
        return None  # 31 Feb, 25:00, ...: the general parser decides
