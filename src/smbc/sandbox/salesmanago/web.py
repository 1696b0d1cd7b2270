"""HTTP side of the fake: the API (with faults and the call record), the /sandbox page and its JSON."""

from __future__ import annotations

import asyncio
import hmac
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import anyio
import httpx
import jinja2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from smbc.sandbox.salesmanago.api import Reply, refused, v3_error
from smbc.sandbox.salesmanago.catalog import GET_METHODS as CATALOG_GET_METHODS
from smbc.sandbox.salesmanago.catalog import METHODS as CATALOG_METHODS
from smbc.sandbox.salesmanago.fake import redact
from smbc.sandbox.salesmanago.state import Account

if TYPE_CHECKING:
    from smbc.sandbox.salesmanago.fake import FakeSalesmanago

Endpoint = Callable[[Request], Awaitable[Response]]
AccountView = Callable[[Request, Account], Awaitable[Response]]

TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parents[1] / "templates"),
    autoescape=True,
)
CALLS_ON_PAGE = 50
CATALOG_PRODUCTS_ON_PAGE = 200  # a catalog of 50,000 products shows its first ones
# Stands in for {endpoint}/static/sm.js: tracks nothing, but shows what the monitoring code set.
MONITORING_JS = """/* Sandbox SALESmanago {name}: notes what the monitoring code set, tracks nothing. */
(function () {
  var queue = window[window.SalesmanagoObject || "sm"];
  var seen = window.smSandbox || {};
  seen["{name}"] = true;
  seen.smid = window._smid || null;
  seen.smapp = window._smapp || null;
  seen.smcustom = !!window._smcustom;
  seen.smbanners = !!window._smbanners;
  seen.smclt = window._smclt || null;
  seen.smclientid = window._smclientid || null;
  seen.queued = queue && queue.q ? queue.q.length : 0;
  window.smSandbox = seen;
})();
"""


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def json_response(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, default=_json_default)
    return Response(body, status_code=status, media_type="application/json")


def build_app(fake: FakeSalesmanago) -> Starlette:
    async def api_call(request: Request) -> Response:
        path = request.url.path
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if fake.faults.latency_ms > 0:
            await asyncio.sleep(fake.faults.latency_ms / 1000)
        status = fake.faults.failure_status()
        if status is not None:
            reply = _fault_reply(path, status)
        elif path in CATALOG_METHODS:
            if (request.method == "GET") != (path in CATALOG_GET_METHODS):
                reply = v3_error(405, 0, f"Method {request.method} is not allowed for {path}")
            else:
                reply = fake.catalogs.handle(
                    path, {} if request.method == "GET" else body, dict(request.headers)
                )
        else:
            reached_at = str(request.base_url).rstrip("/")
            reply = fake.api.handle(
                path, body, dict(request.headers), fake.base_url or reached_at, reached_at
            )
        client_id = reply.client_id or (body.get("clientId") if isinstance(body, dict) else None)
        fake.state.record_call(
            {
                "method": request.method,
                "path": path,
                "clientId": client_id,
                "body": redact(body),
                "time": fake.state.now(),
                "status": reply.status,
                "response": redact(reply.body),
            }
        )
        return JSONResponse(reply.body, status_code=reply.status, headers=reply.headers)

    # -- JSON for tests and the demo --------------------------------------------------------------

    def _account(request: Request) -> Account | None:
        try:
            return fake.account(request.path_params["client_id"])
        except KeyError:
            return None

    def with_account(view: AccountView) -> Endpoint:
        """The route's account (from `{client_id}`) handed to `view`; 404 when there is none."""

        async def endpoint(request: Request) -> Response:
            account = _account(request)
            if account is None:
                return json_response({"error": "unknown account"}, 404)
            return await view(request, account)

        return endpoint

    async def api_accounts(request: Request) -> Response:
        return json_response([a.public() for a in fake.state.accounts.values()])

    async def api_contacts(request: Request, account: Account) -> Response:
        return json_response(fake.contacts(account.client_id))

    async def api_contact(request: Request) -> Response:
        account = _account(request)
        contact = fake.contact(account.client_id, request.path_params["email"]) if account else None
        if contact is None:
            return json_response({"error": "unknown contact"}, 404)
        return json_response(contact)

    async def api_events(request: Request, account: Account) -> Response:
        return json_response(fake.events(account.client_id, type=request.query_params.get("type")))

    async def api_emails(request: Request, account: Account) -> Response:
        return json_response(fake.confirmation_emails(account.client_id))

    async def api_v3_keys(request: Request, account: Account) -> Response:
        keys = [{**k, "apiKey": k["apiKey"][:4] + "…"} for k in fake.v3_keys(account.client_id)]
        return json_response(keys)

    async def api_catalogs(request: Request, account: Account) -> Response:
        return json_response(_catalogs_with_products(fake, account.client_id, None))

    async def api_calls(request: Request) -> Response:
        return json_response(fake.calls)

    async def api_faults(request: Request) -> Response:
        if request.method == "POST":
            try:
                data = await request.json()
                _set_faults(fake, data)
            except (ValueError, TypeError) as exc:
                return json_response({"error": str(exc)}, 400)
        return json_response(fake.faults.snapshot())

    async def api_opt(request: Request, account: Account) -> Response:
        action = request.path_params["action"]
        outcome = await _run_opt_change(fake, account.client_id, request.path_params["email"], action)
        return json_response(outcome, 404 if outcome.get("error") == "unknown contact" else 200)

    # -- the page -----------------------------------------------------------------------------------

    async def page(request: Request) -> Response:
        selected = request.query_params.get("account") or fake.NORMAL.client_id
        if selected not in fake.state.accounts:
            selected = fake.NORMAL.client_id
        account = fake.account(selected)
        html = TEMPLATES.get_template("salesmanago/page.html").render(
            fake=fake,
            accounts=list(fake.state.accounts.values()),
            account=account,
            contacts=sorted(fake.contacts(selected), key=lambda c: c["createdOn"], reverse=True),
            events=sorted(fake.events(selected), key=lambda e: e["createdOn"], reverse=True),
            emails=fake.confirmation_emails(selected),
            callbacks_sent=fake.callbacks_sent(selected),
            catalogs=_catalogs_with_products(fake, selected, CATALOG_PRODUCTS_ON_PAGE),
            calls=[c for c in fake.calls if c["clientId"] in (selected, None)][-CALLS_ON_PAGE:][::-1],
            faults=fake.faults.snapshot(),
            notice=request.query_params.get("notice", ""),
            warning=request.query_params.get("warning", ""),
            error=request.query_params.get("error", ""),
            page_token=fake.page_token,
            base_url=fake.base_url or str(request.base_url).rstrip("/"),
            format_ms=_format_ms,
        )
        return HTMLResponse(html)

    async def page_action(request: Request) -> Response:
        form = await request.form()
        client_id = str(form.get("account", ""))
        back = {"account": client_id}
        if not hmac.compare_digest(str(form.get("page_token", "")), fake.page_token):
            return HTMLResponse("The form is out of date: reload the page.", status_code=403)
        if client_id not in fake.state.accounts:
            return HTMLResponse("Unknown account.", status_code=404)
        action = request.path_params["action"]
        email = str(form.get("email", ""))
        try:
            if action in ("opt-in", "opt-out", "confirm"):
                outcome = await _run_opt_change(fake, client_id, email, action)
                failed_callback = bool((outcome.get("callback") or {}).get("error"))
                kind = "error" if outcome.get("error") else "warning" if failed_callback else "notice"
                back[kind] = _opt_notice(email, action, outcome)
            elif action == "callbacks":
                fake.set_callback_urls(
                    client_id, opt_in=str(form.get("opt_in", "")), opt_out=str(form.get("opt_out", ""))
                )
                back["notice"] = "Callback URLs saved."
            elif action == "faults":
                _set_faults(
                    fake,
                    {
                        "latency_ms": form.get("latency_ms") or 0,
                        "error_rate": form.get("error_rate") or 0,
                        "down": form.get("down") == "on",
                        "fail_next": form.get("fail_next") or 0,
                        "fail_status": form.get("fail_status") or 500,
                    },
                )
                back["notice"] = "Fault switches saved."
            elif action == "delete-catalog":
                if not fake.catalogs.delete(client_id, str(form.get("catalog_id", ""))):
                    raise ValueError("No such catalog.")
                back["notice"] = "Catalog deleted: product calls naming it now answer reasonCode 16."
            elif action == "revoke":
                fake.revoke_credentials(client_id)
                back["notice"] = "Credentials revoked: every call for this account is refused."
            elif action == "restore":
                fake.restore_credentials(client_id)
                back["notice"] = "Credentials restored."
            else:
                return HTMLResponse("Unknown action.", status_code=404)
        except (ValueError, TypeError) as exc:
            back = {"account": client_id, "error": str(exc)}
        return RedirectResponse("/sandbox?" + urlencode(back), status_code=303)

    async def monitoring_script(request: Request) -> Response:
        fake.state.record_monitoring_load(
            {
                "path": request.url.path,
                "referer": request.headers.get("referer"),
                "time": fake.state.now(),
            }
        )
        name = "popups.js" if request.url.path.endswith("popups.js") else "sm.js"
        return Response(MONITORING_JS.replace("{name}", name), media_type="application/javascript")

    async def home(request: Request) -> Response:
        return RedirectResponse("/sandbox", status_code=307)

    routes = [
        Route("/", home),
        Route("/api/{rest:path}", api_call, methods=["POST"]),
        Route("/v3/{rest:path}", api_call, methods=["GET", "POST"]),
        Route("/static/sm.js", monitoring_script),
        Route("/dynamic/{client_id}/popups.js", monitoring_script),
        Route("/sandbox", page),
        Route("/sandbox/actions/{action}", page_action, methods=["POST"]),
        Route("/sandbox/api/accounts", api_accounts),
        Route("/sandbox/api/accounts/{client_id}/contacts", with_account(api_contacts)),
        Route("/sandbox/api/accounts/{client_id}/contacts/{email}", api_contact),
        Route(
            "/sandbox/api/accounts/{client_id}/contacts/{email}/{action:str}",
            with_account(api_opt),
            methods=["POST"],
        ),
        Route("/sandbox/api/accounts/{client_id}/events", with_account(api_events)),
        Route("/sandbox/api/accounts/{client_id}/confirmation-emails", with_account(api_emails)),
        Route("/sandbox/api/accounts/{client_id}/v3-keys", with_account(api_v3_keys)),
        Route("/sandbox/api/accounts/{client_id}/catalogs", with_account(api_catalogs)),
        Route("/sandbox/api/calls", api_calls),
        Route("/sandbox/api/faults", api_faults, methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes)


def _catalogs_with_products(fake: FakeSalesmanago, client_id: str, most: int | None) -> list[dict[str, Any]]:
    """The account's catalogs, each with (the first `most` of) its products."""
    return [
        {**c, "products": fake.catalogs.products(client_id, c["catalogId"])[:most]}
        for c in fake.catalogs.catalogs(client_id)
    ]


def _fault_reply(path: str, status: int) -> Reply:
    headers = {"Retry-After": "1"} if status in (429, 503) else {}
    message = "Service unavailable" if status == 503 else f"Sandbox fault: HTTP {status}"
    reply = v3_error(status, 0, message) if path.startswith("/v3/") else refused(message, status=status)
    reply.headers = headers
    return reply


async def _run_opt_change(fake: FakeSalesmanago, client_id: str, email: str, action: str) -> dict[str, Any]:
    """Opt in / out / confirm DOI, calling the callback on a worker thread (it may call this process)."""
    change = {"opt-in": fake.opt_in, "opt-out": fake.opt_out, "confirm": fake.confirm_double_opt_in}.get(
        action
    )
    if change is None:
        return {"error": f"unknown action {action}"}
    if fake.contact(client_id, email) is None:
        return {"error": "unknown contact"}
    try:
        response = await anyio.to_thread.run_sync(change, client_id, email)
    except KeyError as exc:
        return {"error": str(exc.args[0]) if exc.args else "unknown contact"}
    except httpx.HTTPError as exc:
        return {
            "contact": fake.contact(client_id, email),
            "callback": {"error": f"{type(exc).__name__}: {exc}"},
        }
    callback = (
        None if response is None else {"url": str(response.request.url), "status": response.status_code}
    )
    return {"contact": fake.contact(client_id, email), "callback": callback}


def _opt_notice(email: str, action: str, outcome: dict[str, Any]) -> str:
    if outcome.get("error"):
        return f"{email}: {outcome['error']}"
    done = {"opt-in": "opted in", "opt-out": "opted out", "confirm": "confirmed the double opt-in"}[action]
    callback = outcome.get("callback")
    if callback is None:
        return f"{email} {done}; no callback URL is set."
    if callback.get("error"):
        return f"{email} {done}; the callback failed: {callback['error']}"
    return f"{email} {done}; callback answered HTTP {callback['status']}."


def _set_faults(fake: FakeSalesmanago, data: dict[str, Any]) -> None:
    latency = int(data.get("latency_ms", fake.faults.latency_ms))
    rate = float(data.get("error_rate", fake.faults.error_rate))
    if latency < 0 or latency > 60_000:
        raise ValueError("latency_ms must be between 0 and 60000")
    if not 0 <= rate <= 1:
        raise ValueError("error_rate must be between 0 and 1")
    fail_next = int(data.get("fail_next", 0))
    fail_status = int(data.get("fail_status", 500))
    if fail_next:
        fake.fail_next(fail_next, fail_status)
    fake.faults.latency_ms = latency
    fake.faults.error_rate = rate
    fake.faults.down = bool(data.get("down", fake.faults.down))


def _format_ms(value: int | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(value / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
