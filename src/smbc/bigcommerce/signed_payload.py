"""Verification of BigCommerce's `signed_payload_jwt` (load, uninstall, remove-user callbacks).

HS256 only, keyed by the app's client secret, `aud` = client id, `iss` = "bc", `sub` = stores/{hash},
`exp` required. Time comes from `smbc.core.clock` so tests move it; `nbf`/`iat` get 30 s of leeway because
BigCommerce sets `nbf == iat` and any clock skew would otherwise reject a fresh token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import jwt

from smbc.core.clock import get_clock

ALGORITHM = "HS256"
ISSUER = "bc"
LEEWAY_SECONDS = 30
_SUBJECT = re.compile(r"^stores/([A-Za-z0-9]{1,64})$")


class SignedPayloadError(Exception):
    """The payload is not one BigCommerce signed for this app (or is malformed); `status` is 400/401."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class AppNotConfiguredError(RuntimeError):
    """Verifying with an empty client secret would let anyone forge payloads: refuse instead."""


@dataclass(frozen=True)
class BcUser:
    id: int
    email: str
    locale: str | None = None


@dataclass(frozen=True)
class SignedPayload:
    store_hash: str
    user: BcUser
    owner: BcUser
    url: str
    channel_id: int | None
    jti: str | None
    issued_at: float | None = None  # `iat`, epoch seconds
    expires_at: float = 0.0  # `exp`, epoch seconds

    @property
    def is_owner(self) -> bool:
        return self.user.id == self.owner.id


def verify_signed_payload(token: str | None, *, client_id: str, client_secret: str) -> SignedPayload:
    if not client_secret or not client_id:
        raise AppNotConfiguredError(
            "SMBC_BC_CLIENT_ID and SMBC_BC_CLIENT_SECRET must be set to verify BigCommerce requests"
        )
    if not token:
        raise SignedPayloadError("The request carries no signed_payload_jwt.", status=400)
    claims = _decode(token, client_id=client_id, client_secret=client_secret)
    _check_times(claims)
    match = _SUBJECT.match(str(claims.get("sub", "")))
    if not match:
        raise SignedPayloadError("The signed payload does not name a store (sub must be stores/{hash}).")
    return SignedPayload(
        store_hash=match.group(1),
        user=_user(claims.get("user"), "user"),
        owner=_user(claims.get("owner"), "owner"),
        url=str(claims.get("url") or "/"),
        channel_id=_optional_int(claims.get("channel_id")),
        jti=str(claims["jti"]) if claims.get("jti") else None,
        issued_at=_number(claims, "iat"),
        expires_at=_number(claims, "exp") or 0.0,
    )


def _decode(token: str, *, client_id: str, client_secret: str) -> dict:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise SignedPayloadError("The signed payload is not a valid JWT.", status=400) from None
    if header.get("alg") != ALGORITHM:
        raise SignedPayloadError(f"The signed payload uses algorithm {header.get('alg')!r}; only HS256.")
    try:
        return jwt.decode(
            token,
            client_secret,
            algorithms=[ALGORITHM],
            audience=client_id,
            issuer=ISSUER,
            # Times are checked in _check_times against smbc.core.clock, not PyJWT's wall clock.
            options={
                "require": ["exp", "aud", "iss", "sub"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidAudienceError:
        raise SignedPayloadError("The signed payload was issued for another app (audience).") from None
    except jwt.InvalidIssuerError:
        raise SignedPayloadError("The signed payload was not issued by BigCommerce (issuer).") from None
    except jwt.InvalidSignatureError:
        raise SignedPayloadError("The signed payload's signature does not match.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise SignedPayloadError(f"The signed payload lacks the {exc.claim!r} claim.") from None
    except jwt.InvalidTokenError:
        raise SignedPayloadError("The signed payload is not valid.") from None


def _number(claims: dict, name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SignedPayloadError(f"The signed payload's {name!r} claim is not a time.")
    return float(value)


def _check_times(claims: dict) -> None:
    now = get_clock().time()
    exp = _number(claims, "exp")
    if exp is None or now >= exp:
        raise SignedPayloadError("The signed payload has expired: open the app again from the control panel.")
    for name in ("nbf", "iat"):
        value = _number(claims, name)
        if value is not None and value > now + LEEWAY_SECONDS:
            raise SignedPayloadError(f"The signed payload is not valid yet ({name} is in the future).")


def _user(value: object, name: str) -> BcUser:
    if not isinstance(value, dict) or _optional_int(value.get("id")) is None:
        raise SignedPayloadError(f"The signed payload has no valid {name!r}.", status=400)
    return BcUser(
        id=int(value["id"]),
        email=str(value.get("email") or ""),
        locale=str(value["locale"]) if value.get("locale") else None,
    )


def _optional_int(value: object) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def safe_deep_link(url: str | None) -> str:
    """The `url` claim only when it is a root-relative path (never `//host`, `/\\host` or absolute)."""
    if not url or not url.startswith("/") or url.startswith(("//", "/\\")):
        return "/"
    if any(ch in url for ch in "\r\n\t\\"):
        return "/"
    return url
