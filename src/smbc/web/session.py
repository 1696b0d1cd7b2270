"""The dashboard's own session: a short-lived token minted after a verified load, bound to one store
and one user, held in page memory and sent by the dashboard's JavaScript as `Authorization: Bearer`.

No cookie is involved, so the app works in a cross-site iframe with third-party cookies blocked, and a
forged cross-site form or request cannot carry the header (CSRF-safe by construction).
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Annotated

import jwt
from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from smbc.actions.store_lookup import StoreNotInstalled, installed_store
from smbc.core.clock import get_clock
from smbc.db.models import Store, StoreUser
from smbc.stores.access import DashboardSession

SESSION_TTL = timedelta(hours=1)
_AUDIENCE = "smbc-dashboard"


def _signing_key(secret_keys: list[str]) -> bytes:
    # Derived, so the token key is not the encryption key itself.
    return hashlib.sha256(b"smbc-session:" + secret_keys[0].encode()).digest()


def session_expires_at(issued_at: float) -> int:
    return int(issued_at + SESSION_TTL.total_seconds())


def mint_session_token(session: DashboardSession, secret_keys: list[str]) -> str:
    now = get_clock().time()
    claims = {
        "aud": _AUDIENCE,
        "sub": session.store_hash,
        "uid": session.user_id,
        "bcu": session.bc_user_id,
        "role": session.role,
        "email": session.email,
        "iat": int(now),
        "exp": session_expires_at(now),
    }
    return jwt.encode(claims, _signing_key(secret_keys), algorithm="HS256")


def read_session_token(token: str, secret_keys: list[str]) -> DashboardSession:
    """Raise jwt.InvalidTokenError when the token is forged, expired or not ours."""
    claims = _decode(token, secret_keys)
    return DashboardSession(
        store_hash=claims["sub"],
        user_id=int(claims["uid"]),
        bc_user_id=int(claims["bcu"]),
        role=claims["role"],
        email=claims.get("email", ""),
    )


def _decode(token: str, secret_keys: list[str]) -> dict:
    # Expiry is checked against the process clock (not PyJWT's wall clock) so tests can move time.
    claims = jwt.decode(
        token,
        _signing_key(secret_keys),
        algorithms=["HS256"],
        audience=_AUDIENCE,
        options={"require": ["exp", "iat", "sub", "uid"], "verify_exp": False, "verify_iat": False},
    )
    if claims["exp"] <= get_clock().time():
        raise jwt.ExpiredSignatureError("session expired: open the app again from the control panel")
    return claims


def current_session(request: Request) -> DashboardSession:
    """FastAPI dependency for every dashboard route: 401 without a valid session header, or when the
    store was uninstalled or the user removed since the token was minted."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(status_code=401, detail="Open the app from your BigCommerce control panel.")
    try:
        session = read_session_token(token, request.app.state.settings.secret_keys)
    except jwt.InvalidTokenError as exc:
        raise HTTPException(status_code=401, detail=f"Session not valid: {exc}") from None
    with request.app.state.runtime.db.session() as db:
        if not still_allowed(db, session):
            raise HTTPException(
                status_code=401, detail="Your access to this store has ended: open the app again."
            )
    return session


CurrentSession = Annotated[DashboardSession, Depends(current_session)]


def still_allowed(db: Session, session: DashboardSession) -> bool:
    """The store is still installed and the user still linked to it."""
    found = db.scalar(
        select(StoreUser.id)
        .join(Store, Store.id == StoreUser.store_id)
        .where(
            Store.hash == session.store_hash,
            Store.status == "installed",
            StoreUser.user_id == session.user_id,
        )
    )
    return found is not None


def require_owner(session: DashboardSession = Depends(current_session)) -> DashboardSession:
    """For actions only the store owner may take."""
    if not session.is_owner:
        raise HTTPException(status_code=403, detail="Only the store owner can do this.")
    return session


def installed_store_or_404(session: Session, store_hash: str) -> Store:
    """The installed store a dashboard tab is about; a 404 once the store is uninstalled."""
    try:
        return installed_store(session, store_hash)
    except StoreNotInstalled:
        raise HTTPException(status_code=404, detail="This store does not have the app installed.") from None
