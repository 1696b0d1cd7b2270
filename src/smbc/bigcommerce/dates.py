"""BigCommerce's two date forms, read without ever raising on a value of the wrong shape."""

from __future__ import annotations

from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any


def parse_date(value: Any) -> datetime | None:
    """RFC-2822 (v2: `Tue, 20 Nov 2012 00:00:00 +0000`) or ISO-8601 (v3); None for anything else,
    a number, a list or an unreadable text alike."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
