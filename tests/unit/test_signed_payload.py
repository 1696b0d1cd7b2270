"""The signed_payload_jwt matrix: only a fresh HS256 payload signed with our secret for our app and a
store is accepted."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import jwt
import pytest
from bc_fakes import CLIENT_ID, CLIENT_SECRET, OWNER, STAFF, bc_claims, sign
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from smbc.bigcommerce.signed_payload import (
    AppNotConfiguredError,
    SignedPayloadError,
    safe_deep_link,
    verify_signed_payload,
)
from smbc.core.clock import FakeClock, set_clock


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    fake = FakeClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    previous = set_clock(fake)
    yield fake
    set_clock(previous)


def verify(token: str | None, **kw):
    return verify_signed_payload(
        token, client_id=kw.get("client_id", CLIENT_ID), client_secret=kw.get("client_secret", CLIENT_SECRET)
    )


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_valid_payload_gives_store_users_and_deep_link(clock: FakeClock) -> None:
    payload = verify(sign(bc_claims("st0re1", user=STAFF, url="/export", channel_id=3)))
    assert payload.store_hash == "st0re1"
    assert payload.user.id == STAFF["id"] and payload.user.email == STAFF["email"]
    assert payload.user.locale == "en-US"
    assert payload.owner.id == OWNER["id"]
    assert not payload.is_owner
    assert payload.url == "/export" and payload.channel_id == 3


def test_owner_is_told_apart_from_user(clock: FakeClock) -> None:
    assert verify(sign(bc_claims())).is_owner


@pytest.mark.parametrize(
    ("case", "make_token", "message"),
    [
        ("wrong key", lambda: sign(bc_claims(), key="another-apps-secret"), "signature"),
        ("wrong audience", lambda: sign(bc_claims(aud="someone-else")), "another app"),
        ("wrong issuer", lambda: sign(bc_claims(iss="evil")), "issuer"),
        ("no issuer", lambda: sign(bc_claims(iss=...)), "iss"),
        ("sub not a store", lambda: sign(bc_claims(sub="users/1")), "store"),
        ("sub with a path", lambda: sign(bc_claims(sub="stores/abc/../x")), "store"),
        ("no exp", lambda: sign(bc_claims(exp=...)), "exp"),
        ("HS512", lambda: sign(bc_claims(), algorithm="HS512"), "HS512"),
    ],
)
def test_refused(clock: FakeClock, case: str, make_token, message: str) -> None:
    with pytest.raises(SignedPayloadError, match=message) as err:
        verify(make_token())
    assert err.value.status == 401, case


def test_alg_none_is_refused(clock: FakeClock) -> None:
    token = _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(bc_claims()) + "."
    with pytest.raises(SignedPayloadError, match="none"):
        verify(token)


def test_rs256_is_refused_even_with_a_valid_signature(clock: FakeClock) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(SignedPayloadError, match="RS256"):
        verify(jwt.encode(bc_claims(), pem, algorithm="RS256"))


def test_tampered_claims_are_refused(clock: FakeClock) -> None:
    header, _claims, signature = sign(bc_claims("victim")).split(".")
    forged = ".".join([header, _b64(bc_claims("attacker")), signature])
    with pytest.raises(SignedPayloadError, match="signature"):
        verify(forged)


def test_expired_payload_is_refused(clock: FakeClock) -> None:
    token = sign(bc_claims())
    clock.advance(24 * 3600 - 1)
    assert verify(token).store_hash == "abc123"
    clock.advance(1)
    with pytest.raises(SignedPayloadError, match="expired"):
        verify(token)


def test_nbf_and_iat_get_thirty_seconds_of_leeway(clock: FakeClock) -> None:
    now = int(clock.time())
    assert verify(sign(bc_claims(nbf=now + 30, iat=now + 30))).store_hash == "abc123"
    with pytest.raises(SignedPayloadError, match="nbf"):
        verify(sign(bc_claims(nbf=now + 31, iat=now)))
    with pytest.raises(SignedPayloadError, match="iat"):
        verify(sign(bc_claims(nbf=now, iat=now + 31)))


def test_non_numeric_times_are_refused(clock: FakeClock) -> None:
    with pytest.raises(SignedPayloadError):
        verify(sign(bc_claims(exp="tomorrow")))


def test_empty_secret_refuses_to_verify(clock: FakeClock) -> None:
    # A token "signed" with the empty key must never pass: the verifier refuses to run at all.
    signing_input = _b64({"alg": "HS256", "typ": "JWT"}) + "." + _b64(bc_claims())
    mac = hmac.new(b"", signing_input.encode(), hashlib.sha256).digest()
    token = signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    with pytest.raises(AppNotConfiguredError):
        verify(token, client_secret="")


def test_missing_or_garbage_token_is_a_bad_request(clock: FakeClock) -> None:
    for token in (None, "", "not-a-jwt"):
        with pytest.raises(SignedPayloadError) as err:
            verify(token)
        assert err.value.status == 400


def test_payload_without_user_is_a_bad_request(clock: FakeClock) -> None:
    with pytest.raises(SignedPayloadError, match="user") as err:
        verify(sign(bc_claims(user={"email": "x@example.com"})))
    assert err.value.status == 400


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("/", "/"),
        ("/export?x=1", "/export?x=1"),
        ("/app/tabs/activity", "/app/tabs/activity"),
        ("//evil.example.com/x", "/"),
        ("/\\evil.example.com", "/"),
        ("https://evil.example.com/", "/"),
        ("javascript:alert(1)", "/"),
        ("export", "/"),
        ("/a\r\nLocation: x", "/"),
        (None, "/"),
    ],
)
def test_deep_link_only_when_root_relative(url: str | None, expected: str) -> None:
    assert safe_deep_link(url) == expected
