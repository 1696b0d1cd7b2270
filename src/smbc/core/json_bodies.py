"""JSON sent to the app from outside (webhook deliveries, SALESmanago's callbacks, the storefront's
cart links), parsed with a depth limit: the standard parser recurses once per level, so a body of a
few thousand nested brackets raises RecursionError (not a ValueError) instead of being refused."""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

# No payload the app accepts comes near this; BigCommerce's deliveries are four levels deep at most.
MAX_JSON_DEPTH = 32

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class InvalidJSON(ValueError):
    """The body is not JSON the app parses; the message completes "the body is ..."."""


def nesting_depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings do not count)."""
    brackets = _BRACKET.findall(_STRING.sub("", text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def parse_json(body: bytes | str) -> Any:
    """The JSON value of a request body; InvalidJSON when it is not JSON or nests deeper than
    MAX_JSON_DEPTH (checked before parsing)."""
    try:
        text = body if isinstance(body, str) else body.decode(json.detect_encoding(body), "surrogatepass")
    except UnicodeDecodeError:
        raise InvalidJSON("not JSON") from None
    # Fewer opening brackets than the limit (strings' included) cannot nest deeper: no scan needed.
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH and nesting_depth(text) > MAX_JSON_DEPTH:
        raise InvalidJSON(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidJSON("not JSON") from None
