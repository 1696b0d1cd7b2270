"""Helpers for unit tests of the control-panel callbacks: BigCommerce-style signed payloads and a tiny
local OAuth token endpoint (the full fake BigCommerce is smbc.sandbox, used by the integration tests)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from smbc.core.clock import get_clock

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"
OWNER = {"id": 1001, "email": "owner@example.com"}
STAFF = {"id": 1002, "email": "staff@example.com", "locale": "en-US"}
ALL_SCOPES = (
    "store_v2_customers store_v2_orders_read_only store_cart_read_only store_v2_content "
    "store_v2_information_read_only store_channel_settings_read_only store_sites_read_only "
    "store_v2_products_read_only "
    "users_basic_information"
)


def bc_claims(store_hash: str = "abc123", user: dict | None = None, **overrides: Any) -> dict[str, Any]:
    now = int(get_clock().time())
    claims: dict[str, Any] = {
        "aud": CLIENT_ID,
        "iss": "bc",
        "iat": now,
        "nbf": now,
        "exp": now + 24 * 3600,
        "jti": str(uuid.uuid4()),  # BigCommerce makes each payload's jti unique
        "sub": f"stores/{store_hash}",
        "user": user or {**OWNER, "locale": "en-US"},
        "owner": OWNER,
        "url": "/",
        "channel_id": None,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not ...}


def sign(claims: dict[str, Any], key: str = CLIENT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


@dataclass
class LoginServer:
    """POST /oauth2/token: answers each known code once with a grant for its store. Also the API's
    GET /stores/{hash}/v3/hooks: a store's `hooks`, or 401 for a store without (its token revoked,
    as after an uninstall)."""

    url: str = ""
    grants: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    requests: list[dict[str, str]] = field(default_factory=list)
    hooks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def grant(
        self,
        code: str,
        store_hash: str = "abc123",
        *,
        token: str = "access-token-1",
        user: dict | None = None,
        scope: str = ALL_SCOPES,
        status: int = 200,
    ) -> None:
        body = {
            "access_token": token,
            "scope": scope,
            "user": user or {**OWNER, "username": "owner"},
            "owner": {**OWNER, "username": "owner"},
            "context": f"stores/{store_hash}",
            "account_uuid": "5f1e2b3c-0000-4000-8000-000000000001",
        }
        self.grants[code] = (status, body)


def login_app(state: LoginServer) -> FastAPI:
    api = FastAPI()

    @api.post("/oauth2/token")
    async def token(request: Request) -> JSONResponse:
        form = dict(await request.form())
        with state.lock:
            state.requests.append({k: str(v) for k, v in form.items()})
            answer = state.grants.pop(str(form.get("code")), None)
        if answer is None or form.get("client_secret") != CLIENT_SECRET or form.get("client_id") != CLIENT_ID:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        return JSONResponse(answer[1], status_code=answer[0])

    @api.get("/stores/{store_hash}/v3/hooks")
    async def hooks(store_hash: str) -> JSONResponse:
        if store_hash not in state.hooks:
            return JSONResponse({"status": 401, "title": "Unauthorized"}, status_code=401)
        data = state.hooks[store_hash]
        pagination = {"total": len(data), "count": len(data), "current_page": 1, "total_pages": 1}
        return JSONResponse({"data": data, "meta": {"pagination": pagination}})

    return api
