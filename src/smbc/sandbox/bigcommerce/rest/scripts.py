"""`/v3/content/scripts`: Script Manager scripts, each visible only to the API client that created it."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from smbc.sandbox.bigcommerce import listing
from smbc.sandbox.bigcommerce.api import ApiError
from smbc.sandbox.bigcommerce.listing import QueryError
from smbc.sandbox.bigcommerce.render import v3
from smbc.sandbox.bigcommerce.rest.access import StoreCall, authorized, has_scope, owned
from smbc.sandbox.bigcommerce.rest.envelopes import v3_answer, v3_page
from smbc.sandbox.bigcommerce.rest.keyed_rows import KeyedRows
from smbc.sandbox.bigcommerce.state import Json, Script, StoreState, Token

router = APIRouter()
Reader = Annotated[StoreCall, Depends(authorized("content"))]
Writer = Annotated[StoreCall, Depends(authorized("content", write=True))]

MAX_SCRIPTS_PER_APP = 10
ENUMS: dict[str, tuple[str, ...]] = {
    "kind": ("src", "script_tag"),
    "load_method": ("default", "async", "defer"),
    "location": ("head", "footer"),
    "visibility": ("storefront", "all_pages", "checkout", "order_confirmation"),
    "consent_category": ("essential", "functional", "analytics", "targeting", "unknown"),
}
# Scripts shown on these pages need the checkout-content scope as well.
CHECKOUT_VISIBILITIES = frozenset({"checkout", "order_confirmation", "all_pages"})
WRITABLE_FIELDS = frozenset(
    {
        "name",
        "description",
        "html",
        "src",
        "auto_uninstall",
        "load_method",
        "location",
        "visibility",
        "kind",
        "consent_category",
        "enabled",
        "channel_id",
        "integrity_hashes",
    }
)
SORTS = ("name", "description", "date_created", "date_modified")


def validate_script(body: Json, existing: Script | None, store: StoreState, token: Token) -> Json:
    """The fields to set; the script they make (the existing one, changed) must be valid as a whole."""
    errors: dict[str, str] = {}
    merged: Json = {} if existing is None else v3.script_json(existing)
    merged.update(body)
    name = merged.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 255:
        errors["name"] = "name is required (1-255 characters)"
    for field_name, allowed in ENUMS.items():
        if field_name in merged and merged[field_name] not in allowed:
            errors[field_name] = f"{field_name} must be one of {list(allowed)}"
    kind = merged.get("kind", "src")
    if kind == "src":
        src = merged.get("src")
        if not isinstance(src, str) or urlsplit(src).scheme not in ("http", "https"):
            errors["src"] = "src must be an absolute URL when kind is src"
    elif kind == "script_tag":
        html = merged.get("html")
        if not isinstance(html, str) or len(html) > 65536:
            errors["html"] = "html is required when kind is script_tag (at most 65,536 characters)"
        if merged.get("load_method", "default") != "default":
            errors["load_method"] = "load_method must be default for script_tag"
    channel_id = merged.get("channel_id", 1)
    if not isinstance(channel_id, int) or channel_id not in store.channels:
        errors["channel_id"] = f"channel_id {channel_id!r} is not a channel of this store"
    hashes = merged.get("integrity_hashes") or []
    if not isinstance(hashes, list) or len(hashes) > 5:
        errors["integrity_hashes"] = "integrity_hashes takes at most 5 hashes"
    for flag in ("enabled", "auto_uninstall"):
        if flag in merged and not isinstance(merged[flag], bool):
            errors[flag] = f"{flag} must be a boolean"
    if errors:
        raise ApiError(422, "The script is not valid", errors)
    if merged.get("visibility") in CHECKOUT_VISIBILITIES and not has_scope(
        token, ("checkout_content",), True
    ):
        raise ApiError(403, "Scripts on checkout pages need the store_content_checkout scope")
    return {k: v for k, v in body.items() if k in WRITABLE_FIELDS}


def _copied(fields: Json) -> Json:
    """The fields to set, with the hash list copied (the script must not share the request's list)."""
    return {name: list(value) if name == "integrity_hashes" else value for name, value in fields.items()}


def _script(call: StoreCall, script_uuid: str) -> Script:
    return owned(call.store.scripts, script_uuid, call.token, f"Script {script_uuid} not found")


@router.post("/stores/{store_hash}/v3/content/scripts")
async def create_script(call: Writer) -> JSONResponse:
    body = await call.json_object()
    store, client_id = call.store, call.token.client_id
    with call.lock:
        fields = validate_script(body, None, store, call.token)
        if sum(1 for s in store.scripts.values() if s.client_id == client_id) >= MAX_SCRIPTS_PER_APP:
            # The cap is documented; the exact status/message of the refusal is UNCONFIRMED.
            raise ApiError(422, f"An app can create at most {MAX_SCRIPTS_PER_APP} scripts per store")
        now = call.fake.now()
        script = Script(str(uuid.uuid4()), client_id, fields.pop("name"), now, now)
        for name, value in _copied(fields).items():
            setattr(script, name, value)
        store.scripts[script.uuid] = script
        store.touch()
        return v3_answer(v3.script_json(script))


@router.get("/stores/{store_hash}/v3/content/scripts")
async def list_scripts(call: Reader) -> JSONResponse:
    q = call.query
    page, limit = listing.page_and_limit(q)
    channels = listing.parse_int_list(q.get("channel_id:in"), "channel_id:in")
    sort = q.get("sort", "")
    if sort and sort not in SORTS:
        raise QueryError(f"sort: {sort!r} is not supported")
    with call.lock:
        rows = [
            s
            for s in call.store.scripts.values()
            if s.client_id == call.token.client_id and (channels is None or s.channel_id in channels)
        ]
        if sort:
            rows.sort(key=lambda s: getattr(s, sort), reverse=q.get("direction") == "desc")
        return v3_page(rows, page, limit, v3.script_json)


SCRIPTS = KeyedRows(
    rows=lambda store: store.scripts,
    find=_script,
    render=v3.script_json,
    changes=lambda call, body, script: _copied(validate_script(body, script, call.store, call.token)),
)
SCRIPTS.add_routes(router, "/stores/{store_hash}/v3/content/scripts/{key}", str, Reader, Writer)
