"""`/v3/hooks` and `/v3/hooks/admin`: webhooks, each visible only to the API client that created it.

Any valid token may manage its own webhooks: BigCommerce asks for no scope here."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from smbc.sandbox.bigcommerce import listing
from smbc.sandbox.bigcommerce.api import ApiError
from smbc.sandbox.bigcommerce.render import v3
from smbc.sandbox.bigcommerce.rest.access import StoreCall, authorized, owned
from smbc.sandbox.bigcommerce.rest.envelopes import v3_answer, v3_page
from smbc.sandbox.bigcommerce.state import Hook, Json

router = APIRouter()
Caller = Annotated[StoreCall, Depends(authorized())]

MAX_HOOKS_PER_SCOPE = 10
SCOPE_PATTERN = re.compile(r"^store/[A-Za-z0-9_/*{}]+$")


def _destination_allowed(destination: object, app_url: str) -> bool:
    """BigCommerce accepts only https on port 443; the fake also accepts plain http to localhost and
    to the app's own URL, so tests and the demo receive deliveries without TLS."""
    if not isinstance(destination, str):
        return False
    parts = urlsplit(destination)
    local = parts.hostname in ("127.0.0.1", "localhost") and parts.scheme in ("http", "https")
    secure = parts.scheme == "https" and parts.port in (None, 443)
    return local or secure or destination.startswith(f"{app_url}/")


def validate_hook(body: Json, existing: Hook | None, call: StoreCall) -> Json:
    """The fields to set (scope and destination are required for a new hook)."""
    errors: dict[str, str] = {}
    out: Json = {}
    if "scope" in body or existing is None:
        scope = body.get("scope")
        if not isinstance(scope, str) or not SCOPE_PATTERN.match(scope):
            errors["scope"] = "scope is required and must look like store/customer/created"
        else:
            out["scope"] = scope
    if "destination" in body or existing is None:
        if not _destination_allowed(body.get("destination"), call.fake.app_url):
            errors["destination"] = "destination must be an https URL on port 443"
        else:
            out["destination"] = body["destination"]
    if "headers" in body:
        headers = body["headers"]
        if headers is not None and not (
            isinstance(headers, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            errors["headers"] = "headers must be an object of strings"
        else:
            out["headers"] = dict(headers) if headers is not None else None
    if "is_active" in body:
        if not isinstance(body["is_active"], bool):
            errors["is_active"] = "is_active must be a boolean"
        else:
            out["is_active"] = body["is_active"]
    if errors:
        raise ApiError(422, "The webhook is not valid", errors)
    scope = out.get("scope", existing.scope if existing else "")
    destination = out.get("destination", existing.destination if existing else "")
    same_scope = [
        h
        for h in call.store.hooks.values()
        if h.client_id == call.token.client_id and h.scope == scope and h is not existing
    ]
    if any(h.destination == destination for h in same_scope):
        raise ApiError(422, "A webhook with this scope and destination already exists")
    if len(same_scope) >= MAX_HOOKS_PER_SCOPE:
        raise ApiError(422, f"At most {MAX_HOOKS_PER_SCOPE} webhooks per scope")
    return out


def _hook(call: StoreCall, hook_id: int) -> Hook:
    return owned(call.store.hooks, hook_id, call.token, f"Webhook {hook_id} not found")


def _active_filter(value: str | None) -> bool | None:
    return None if value is None else value.lower() == "true"


def _hook_json(call: StoreCall, hook: Hook) -> Json:
    return v3.hook_json(hook, call.store.hash)


@router.post("/stores/{store_hash}/v3/hooks")
async def create_hook(call: Caller) -> JSONResponse:
    body = await call.json_object()
    with call.lock:
        fields = validate_hook(body, None, call)
        now = int(call.fake.now().timestamp())
        hook = Hook(
            id=next(call.store.hook_ids),
            client_id=call.token.client_id,
            scope=fields["scope"],
            destination=fields["destination"],
            headers=fields.get("headers"),
            is_active=fields.get("is_active", True),
            created_at=now,
            updated_at=now,
        )
        call.store.hooks[hook.id] = hook
        call.store.touch()
        return v3_answer(_hook_json(call, hook))


@router.get("/stores/{store_hash}/v3/hooks")
async def list_hooks(call: Caller) -> JSONResponse:
    q = call.query
    page, limit = listing.page_and_limit(q)
    active = _active_filter(q.get("is_active"))
    with call.lock:
        rows = [
            h
            for h in call.store.hooks.values()
            if h.client_id == call.token.client_id
            and (active is None or h.is_active == active)
            and (q.get("scope") is None or h.scope == q["scope"])
            and (q.get("destination") is None or h.destination == q["destination"])
        ]
        return v3_page(rows, page, limit, lambda h: _hook_json(call, h))


# Registered before /v3/hooks/{hook_id}, which would take "admin" for an id.
@router.get("/stores/{store_hash}/v3/hooks/admin")
async def hooks_admin(call: Caller) -> JSONResponse:
    active = _active_filter(call.query.get("is_active"))
    with call.lock:
        hooks = [
            v3.hook_json(h, call.store.hash, with_status=True)
            for h in call.store.hooks.values()
            if h.client_id == call.token.client_id and (active is None or h.is_active == active)
        ]
        data = {
            "emails": list(call.store.hook_admin_emails),
            "hooks_list": hooks,
            "blocked_domains": call.fake.webhooks.blocked_domains(call.token.client_id),
        }
    return v3_answer(data)


@router.put("/stores/{store_hash}/v3/hooks/admin")
async def hooks_admin_emails(call: Caller) -> Response:
    emails = (await call.json_object()).get("emails")
    if not isinstance(emails, list) or not all(isinstance(e, str) and "@" in e for e in emails):
        raise ApiError(422, "emails must be a list of email addresses")
    with call.lock:
        call.store.hook_admin_emails = list(emails)
    return Response(status_code=204)


@router.get("/stores/{store_hash}/v3/hooks/{hook_id}")
async def get_hook(call: Caller, hook_id: int) -> JSONResponse:
    with call.lock:
        return v3_answer(_hook_json(call, _hook(call, hook_id)))


@router.put("/stores/{store_hash}/v3/hooks/{hook_id}")
async def update_hook(call: Caller, hook_id: int) -> JSONResponse:
    body = await call.json_object()
    with call.lock:
        hook = _hook(call, hook_id)
        for name, value in validate_hook(body, hook, call).items():
            setattr(hook, name, value)
        if hook.is_active:
            hook.deactivated = False
        hook.updated_at = int(call.fake.now().timestamp())
        call.store.touch()
        return v3_answer(_hook_json(call, hook))


@router.delete("/stores/{store_hash}/v3/hooks/{hook_id}")
async def delete_hook(call: Caller, hook_id: int) -> JSONResponse:
    with call.lock:
        hook = _hook(call, hook_id)
        call.store.removed(call.store.hooks, hook_id)
        return v3_answer(_hook_json(call, hook))
