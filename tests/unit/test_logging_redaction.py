"""JSON-lines logs never carry tokens, passwords or secrets, in the message or in extra fields."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from smbc.core.logging_config import REDACTED, configure_logging, redact_text

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJzdG9yZXMvYWJjIn0.c2lnbmF0dXJl"
SECRETS = ["c0de-XYZ", JWT, "tok_123", "hunter2"]


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging("DEBUG", stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (
            "GET /bigcommerce/auth?code=c0de-XYZ&scope=store_v2_content&context=stores/abc HTTP/1.1",
            "scope=store_v2_content",
        ),
        (
            f"GET /bigcommerce/load?signed_payload_jwt={JWT}",
            "/load",
        ),
        (f"payload {JWT} seen", "payload"),
        ("request headers {'X-Auth-Token': 'tok_123', 'Accept': 'application/json'}", "application/json"),
        ('{"apiKey": "tok_123", "clientId": "cid", "sha": "hunter2"}', '"clientId": "cid"'),
        ("login email=a@b.c password=hunter2", "email=a@b.c"),
        ("Authorization: Bearer tok_123", "Authorization"),
        ("callback token=tok_123&store=abc", "store=abc"),
        ('{"access_token": "tok_123", "client_secret": "hunter2"}', "access_token"),
        ("X-Auth-Token: tok_123", "X-Auth-Token"),
    ],
)
def test_secrets_in_messages_are_redacted(text: str, kept: str) -> None:
    out = redact_text(text)
    assert not any(secret in out for secret in SECRETS), out
    assert REDACTED in out and kept in out


def test_status_codes_and_plain_words_are_kept() -> None:
    text = "answered status_code=200 for shared secret rotation in 3 s"
    assert redact_text(text) == text


def test_json_lines_with_redacted_message_extra_and_exception(captured: io.StringIO) -> None:
    log = logging.getLogger("smbc.test")
    log.info(
        "token exchange for %s with code=%s",
        "stores/abc",
        "c0de-XYZ",
        extra={
            "access_token": "tok_123",
            "store_id": 7,
            "headers": {"X-Auth-Token": "tok_123", "Accept": "json"},
        },
    )
    try:
        raise RuntimeError("failed with password=hunter2")
    except RuntimeError:
        log.exception("login failed")
    first, second = lines(captured)
    assert first["level"] == "INFO" and first["logger"] == "smbc.test" and first["store_id"] == 7
    assert first["msg"] == f"token exchange for stores/abc with code={REDACTED}"
    assert first["access_token"] == REDACTED
    assert first["headers"] == {"X-Auth-Token": REDACTED, "Accept": "json"}
    assert "RuntimeError" in second["exc"] and "hunter2" not in captured.getvalue()
    assert not any(secret in captured.getvalue() for secret in SECRETS)


def test_uvicorn_access_log_goes_through_the_redacting_handler(captured: io.StringIO) -> None:
    access = logging.getLogger("uvicorn.access")
    access.info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/bigcommerce/auth?code=c0de-XYZ", "1.1", 200
    )
    (entry,) = lines(captured)
    assert "c0de-XYZ" not in entry["msg"] and "/bigcommerce/auth?code=" in entry["msg"]
