"""What a SALESmanago answer means: the ONE table from an HTTP answer to an `Outcome`."""

from __future__ import annotations

import json
from typing import Any

import httpx

from smbc.core.remote_calls import Outcome, RemoteCallError

# SDK ExceptionCodeResolver: 101 bad credentials, 102 account (probably) inactive.
MSG_USER_NOT_AUTHENTICATED = "user not authenticated"
MSG_NOT_AUTHENTICATED = "not authenticated"


class UnexpectedAnswerError(RemoteCallError):
    """The host answered, but not like SALESmanago does (no JSON envelope): probably the wrong host."""


def _problems(body: dict[str, Any]) -> list[dict[str, Any]]:
    """v3 per-item problems; anything in that list that is not an object is not a problem we can read."""
    problems = body.get("problems")
    return [p for p in problems if isinstance(p, dict)] if isinstance(problems, list) else []


def _messages(body: dict[str, Any]) -> str:
    raw = body.get("message", body.get("messages"))
    if isinstance(raw, list):
        text = " ".join(str(m) for m in raw if m not in (None, ""))
    elif raw is None:
        text = ""
    else:
        text = str(raw)
    values = body.get("values")
    if isinstance(values, dict) and values:  # SDK validateCustomResponse appends the values map
        text = (text + " " + json.dumps(values, ensure_ascii=False, sort_keys=True)).strip()
    problems = _problems(body)
    if problems:
        text = (text + " " + "; ".join(str(p.get("message", p)) for p in problems)).strip()
    return text


def is_envelope(body: Any, api: str = "v2") -> bool:
    """Does the answer look like SALESmanago's? v2 always has a boolean `success`; v3 is a JSON object."""
    if not isinstance(body, dict):
        return False
    return api == "v3" or isinstance(body.get("success"), bool)


def retry_after(response: httpx.Response) -> float | None:
    reset_ms = response.headers.get("x-rate-limit-time-reset-ms")
    if reset_ms and reset_ms.strip().isdigit():
        return int(reset_ms) / 1000.0
    after = response.headers.get("retry-after", "").strip()
    try:
        return max(0.0, float(after)) if after else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def classify(status: int, body: Any, expected: tuple[str, ...], *, api: str = "v2") -> tuple[Outcome, str]:
    """(outcome, message) for one HTTP answer. `body` is the parsed JSON or None when it was not JSON.

    | answer                                              | outcome      |
    |-----------------------------------------------------|--------------|
    | 429                                                 | RATE_LIMITED |
    | 401, 403                                            | CREDENTIALS  |
    | 5xx                                                 | RETRY        |
    | 3xx (redirects are never followed)                  | INVALID      |
    | message "User not authenticated"/"Not authenticated"| CREDENTIALS  |
    | v3 reasonCode 10 (bad API key)                      | CREDENTIALS  |
    | not a JSON object, 2xx                              | RETRY (a maintenance/proxy page) |
    | not a JSON object, other 4xx                        | INVALID      |
    | v2: success true AND every expected field present   | SUCCESS      |
    | v3: 2xx, no messages/problems, expected present     | SUCCESS      |
    | anything else (success false, field missing, 4xx)   | INVALID with SALESmanago's message |
    """
    message = _messages(body) if isinstance(body, dict) else ""
    lowered = message.lower()
    if status == 429:
        return Outcome.RATE_LIMITED, message or "SALESmanago rate limit reached"
    if status in (401, 403):
        return Outcome.CREDENTIALS, message or f"SALESmanago refused the credentials (HTTP {status})"
    if status >= 500:
        return Outcome.RETRY, message or f"SALESmanago answered HTTP {status}"
    if 300 <= status < 400:
        return Outcome.INVALID, f"HTTP {status}: a redirect, which this app does not follow"
    if MSG_NOT_AUTHENTICATED in lowered:  # also matches "user not authenticated"
        return Outcome.CREDENTIALS, message
    if not isinstance(body, dict):
        if 200 <= status < 400:
            return Outcome.RETRY, f"HTTP {status} without a SALESmanago JSON answer"
        return Outcome.INVALID, f"HTTP {status} without a SALESmanago JSON answer"
    if api == "v3":
        problems = _problems(body)
        if body.get("reasonCode") == 10 or any(p.get("reasonCode") == 10 for p in problems):
            return Outcome.CREDENTIALS, message or "SALESmanago API v3 key is not valid"
        # reasonCode 12 is only a warning (a field was trimmed).
        blocking = [p for p in problems if p.get("reasonCode") != 12]
        if 200 <= status < 300 and not blocking and not body.get("messages") and _has(body, expected):
            return Outcome.SUCCESS, message
        return Outcome.INVALID, message or f"SALESmanago API v3 answered HTTP {status}"
    if body.get("success") is True and 200 <= status < 300:
        if _has(body, expected):
            return Outcome.SUCCESS, message
        missing = ", ".join(f for f in expected if body.get(f) in (None, "", []))
        return Outcome.INVALID, (message + f" (answer without {missing})").strip()
    return Outcome.INVALID, message or f"SALESmanago refused the request (HTTP {status})"


def _has(body: dict[str, Any], expected: tuple[str, ...]) -> bool:
    return all(body.get(name) not in (None, "") for name in expected)
