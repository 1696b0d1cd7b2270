"""Logs as JSON lines on stderr, with every token, password and secret redacted.

Redaction works on two levels: `extra` fields whose name is sensitive are replaced, and the message
text is scrubbed of `name=value` / `"name": "value"` / `Header: value` pairs, bearer tokens and
anything shaped like a JWT (uvicorn's access log carries full query strings, e.g. ?code=…).
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

REDACTED = "[REDACTED]"

# Exact (lower-case) names that are secret, plus any name containing one of the fragments below.
SENSITIVE_NAMES = {
    "code",
    "sha",
    "apikey",
    "api_key",
    "signed_payload_jwt",
    "signed_payload",
    "x-auth-token",
    "authorization",
    "cookie",
    "set-cookie",
}
SENSITIVE_FRAGMENTS = ("token", "secret", "password", "passwd", "apikey", "api_key", "credential")

_SENSITIVE_NAME = (
    r"(?:[A-Za-z0-9_.-]*(?:"
    + "|".join(SENSITIVE_FRAGMENTS)
    + r")[A-Za-z0-9_.-]*|"
    + "|".join(re.escape(n) for n in sorted(SENSITIVE_NAMES))
    + ")"
)
# name=value (query strings, key=value text), "name": "value" (JSON, dict reprs), Header: value.
_PAIR = re.compile(
    r"""(?i)(?<![A-Za-z0-9_.-])(?P<key>["']?""" + _SENSITIVE_NAME + r"""["']?)(?P<sep>\s*[:=]\s*)"""
    r"""(?:(?P<q>["'])[^"']*(?P=q)|(?:Bearer\s+|Basic\s+)?[^\s&"',;}\]]+)"""
)
_BEARER = re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


def is_sensitive(name: str) -> bool:
    lowered = name.lower()
    return lowered in SENSITIVE_NAMES or any(fragment in lowered for fragment in SENSITIVE_FRAGMENTS)


def redact_text(text: str) -> str:
    def pair(match: re.Match[str]) -> str:
        quote = match.group("q") or ""
        return f"{match.group('key')}{match.group('sep')}{quote}{REDACTED}{quote}"

    text = _PAIR.sub(pair, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _JWT.sub(REDACTED, text)


def redact_value(name: str, value: Any) -> Any:
    if is_sensitive(name):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(name, v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact_text(str(value))


_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn: the same message with terminal colours
}


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = redact_value(key, value)
        if record.exc_info:
            entry["exc"] = redact_text(self.formatException(record.exc_info))
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: Any = None) -> logging.Handler:
    """Route the root logger (and uvicorn's, which propagate) to one JSON-lines handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLinesFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "huey", "huey.consumer"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
        logger.disabled = False
    if root.getEffectiveLevel() > logging.DEBUG:
        # A line per request and per task run was 7 % of a busy process's time: DEBUG shows them.
        logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
        logging.getLogger("huey").setLevel(logging.WARNING)
        logging.getLogger("huey.consumer").setLevel(root.level)  # its start and stop lines stay
    logging.getLogger("httpx").setLevel(logging.WARNING)
    return handler
