"""Opt-in / opt-out callbacks to a real HTTP receiver, and the /sandbox page and its JSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sm_helpers import *  # noqa: F403 - the fixtures
from sm_helpers import SmSession, TestClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from smbc.core.http_server import BackgroundServer, free_port
from smbc.sandbox.salesmanago import FakeSalesmanago


class Receiver:
    """A tiny app standing in for our product's callback endpoint."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []

        async def callback(request: Request) -> JSONResponse:
            self.received.append(
                {"path": request.url.path, "method": request.method, "query": dict(request.query_params)}
            )
            return JSONResponse({"success": True}, status_code=200 if request.url.path != "/broken" else 500)

        self.app = Starlette(routes=[Route("/{name}", callback, methods=["GET", "POST"])])


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    with BackgroundServer(rec.app) as server:
        yield rec, server.url


def test_opt_in_and_out_call_the_urls_with_the_email_encoded(
    fake: FakeSalesmanago, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    cid = fake.NORMAL.client_id
    fake.set_callback_urls(
        cid, opt_in=f"{url}/in?email=$email$&token=t0k", opt_out=f"{url}/out?email=$email$"
    )
    fake.add_contact(cid, "jan+shop@example.com", opted_in=False)

    response = fake.opt_in(cid, "jan+shop@example.com")
    assert response.status_code == 200
    assert fake.contact(cid, "jan+shop@example.com")["optedIn"] is True
    assert rec.received[-1] == {
        "path": "/in",
        "method": "GET",
        "query": {"email": "jan+shop@example.com", "token": "t0k"},
    }
    assert "jan%2Bshop%40example.com" in str(response.request.url)

    fake.opt_out(cid, "jan+shop@example.com")
    assert fake.contact(cid, "jan+shop@example.com")["optedIn"] is False
    assert rec.received[-1]["path"] == "/out"
    assert rec.received[-1]["query"] == {"email": "jan+shop@example.com"}
    assert [c["kind"] for c in fake.callbacks_sent(cid)] == ["opt-in", "opt-out"]
    assert [c["status"] for c in fake.callbacks_sent(cid)] == [200, 200]


def test_confirming_double_opt_in_calls_the_opt_in_callback(
    fake: FakeSalesmanago, session: SmSession, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    cid = fake.NORMAL.client_id
    fake.set_callback_urls(cid, opt_in=f"{url}/in?email=$email$")
    session.upsert("doi@example.com", forceOptIn=True, useApiDoubleOptIn=True, doubleOptInEmailId="d" * 36)
    assert rec.received == []  # the API upsert itself calls nothing back
    fake.confirm_double_opt_in(cid, "doi@example.com")
    assert rec.received == [{"path": "/in", "method": "GET", "query": {"email": "doi@example.com"}}]
    assert fake.confirmation_emails(cid)[0]["confirmed"] is True
    with pytest.raises(KeyError):
        fake.confirm_double_opt_in(cid, "doi@example.com")


def test_failed_callbacks_are_recorded(fake: FakeSalesmanago, receiver: tuple[Receiver, str]) -> None:
    _, url = receiver
    cid = fake.NORMAL.client_id
    fake.add_contact(cid, "a@example.com", opted_in=False)
    fake.set_callback_urls(cid, opt_in=f"{url}/broken?e=$email$")
    assert fake.opt_in(cid, "a@example.com").status_code == 500
    fake.set_callback_urls(cid, opt_out=f"http://127.0.0.1:{free_port()}/gone?e=$email$")
    with pytest.raises(httpx.ConnectError):
        fake.opt_out(cid, "a@example.com")
    sent = fake.callbacks_sent(cid)
    assert sent[0]["status"] == 500
    assert sent[1]["status"] is None
    assert "ConnectError" in sent[1]["error"]
    assert fake.contact(cid, "a@example.com")["optedIn"] is False


def test_callback_urls_must_have_the_placeholder(fake: FakeSalesmanago) -> None:
    cid = fake.NORMAL.client_id
    with pytest.raises(ValueError, match=r"\$email\$"):
        fake.set_callback_urls(cid, opt_in="https://app.example/callbacks?email=x")
    with pytest.raises(ValueError, match="http"):
        fake.set_callback_urls(cid, opt_out="ftp://app.example/?e=$email$")
    fake.add_contact(cid, "a@example.com", opted_in=False)
    assert fake.opt_in(cid, "a@example.com") is None  # nothing configured: state changes, no call
    assert fake.contact(cid, "a@example.com")["optedIn"] is True
    with pytest.raises(KeyError):
        fake.opt_in(cid, "nobody@example.com")


def test_page_buttons_opt_in_with_callback(
    fake: FakeSalesmanago, receiver: tuple[Receiver, str], http: TestClient
) -> None:
    rec, url = receiver
    cid = fake.NORMAL.client_id
    fake.set_callback_urls(cid, opt_in=f"{url}/in?email=$email$")
    fake.add_contact(cid, "page@example.com", opted_in=False)
    page = http.get("/sandbox")
    assert page.status_code == 200
    assert "page@example.com" in page.text
    assert 'aria-label="Opt in page@example.com"' in page.text

    form = {"page_token": fake.page_token, "account": cid, "email": "page@example.com"}
    answer = http.post("/sandbox/actions/opt-in", data=form, follow_redirects=False)
    assert answer.status_code == 303
    assert rec.received == [{"path": "/in", "method": "GET", "query": {"email": "page@example.com"}}]
    assert fake.contact(cid, "page@example.com")["optedIn"] is True
    shown = http.get(answer.headers["location"])
    assert "callback answered HTTP 200" in shown.text

    forged = http.post(
        "/sandbox/actions/opt-out", data={**form, "page_token": "guess"}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert fake.contact(cid, "page@example.com")["optedIn"] is True

    fake.set_callback_urls(cid, opt_out=f"http://127.0.0.1:{free_port()}/gone?e=$email$")
    failed = http.post("/sandbox/actions/opt-out", data=form)
    assert 'class="banner banner--warning"' in failed.text
    assert "page@example.com opted out; the callback failed: ConnectError" in failed.text
    assert fake.contact(cid, "page@example.com")["optedIn"] is False


def test_page_forms_for_callbacks_faults_and_credentials(fake: FakeSalesmanago, http: TestClient) -> None:
    cid = fake.NORMAL.client_id
    base = {"page_token": fake.page_token, "account": cid}
    http.post(
        "/sandbox/actions/callbacks", data={**base, "opt_in": "http://x.test/?e=$email$", "opt_out": ""}
    )
    assert fake.account(cid).callback_opt_in == "http://x.test/?e=$email$"
    bad = http.post("/sandbox/actions/callbacks", data={**base, "opt_in": "http://x.test/"})
    assert "must contain the $email$ placeholder" in bad.text
    assert fake.account(cid).callback_opt_in == "http://x.test/?e=$email$"

    http.post(
        "/sandbox/actions/faults", data={**base, "latency_ms": "5", "error_rate": "0.5", "fail_next": "2"}
    )
    assert fake.faults.snapshot() == {"latency_ms": 5, "error_rate": 0.5, "down": False, "fail_next": 2}
    refused = http.post("/sandbox/actions/faults", data={**base, "error_rate": "3"})
    assert "error_rate must be between 0 and 1" in refused.text
    assert fake.faults.error_rate == 0.5

    http.post("/sandbox/actions/revoke", data=base)
    assert fake.account(cid).revoked is True
    assert "Restore credentials" in http.get(f"/sandbox?account={cid}").text
    http.post("/sandbox/actions/restore", data=base)
    assert fake.account(cid).revoked is False


def test_page_escapes_what_it_shows(fake: FakeSalesmanago, session: SmSession, http: TestClient) -> None:
    session.upsert("x@example.com", contact={"name": "<script>alert(1)</script>"})
    page = http.get("/sandbox").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_page_shows_each_account_events_emails_and_calls(
    fake: FakeSalesmanago, session: SmSession, http: TestClient
) -> None:
    session.upsert("e@example.com", forceOptIn=True, useApiDoubleOptIn=True, doubleOptInEmailId="m" * 36)
    session.add_event("e@example.com", contactExtEventType="CART", externalId="cart-9")
    page = http.get("/sandbox").text
    for expected in ("cart-9", "m" * 36, "/api/v2/contact/addContactExtEvent", fake.NORMAL.api_secret):
        assert expected in page
    other = http.get(f"/sandbox?account={fake.INACTIVE.client_id}").text
    assert "e@example.com" not in other
    assert fake.INACTIVE.client_id in other


def test_json_views(fake: FakeSalesmanago, session: SmSession, http: TestClient) -> None:
    cid = fake.NORMAL.client_id
    session.upsert("j@example.com", tags=["T"])
    session.add_event("j@example.com", contactExtEventType="PURCHASE")
    accounts = http.get("/sandbox/api/accounts").json()
    assert [a["email"] for a in accounts] == [
        "merchant@sandbox.test",
        "2fa@sandbox.test",
        "inactive@sandbox.test",
    ]
    assert "api_secret" not in accounts[0] and "password" not in accounts[0]
    contacts = http.get(f"/sandbox/api/accounts/{cid}/contacts").json()
    assert [c["tags"] for c in contacts] == [["T"]]
    assert http.get(f"/sandbox/api/accounts/{cid}/contacts/j@example.com").json()["email"] == "j@example.com"
    assert http.get(f"/sandbox/api/accounts/{cid}/contacts/none@example.com").status_code == 404
    assert [e["type"] for e in http.get(f"/sandbox/api/accounts/{cid}/events?type=PURCHASE").json()] == [
        "PURCHASE"
    ]
    assert http.get(f"/sandbox/api/accounts/{cid}/events?type=CART").json() == []
    assert http.get(f"/sandbox/api/accounts/{cid}/confirmation-emails").json() == []
    assert http.get("/sandbox/api/accounts/nope/contacts").status_code == 404
    calls = http.get("/sandbox/api/calls").json()
    assert calls[-1]["path"] == "/api/v2/contact/addContactExtEvent"
    assert isinstance(calls[-1]["time"], str)

    opted = http.post(f"/sandbox/api/accounts/{cid}/contacts/j@example.com/opt-in").json()
    assert opted == {"contact": fake.contact(cid, "j@example.com"), "callback": None}
    assert opted["contact"]["optedIn"] is True


def test_monitoring_scripts_are_served_and_counted(fake: FakeSalesmanago, http: TestClient) -> None:
    script = http.get("/static/sm.js", headers={"Referer": "https://store.example/"})
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    assert "window.smSandbox" in script.text
    popups = http.get(f"/dynamic/{fake.NORMAL.client_id}/popups.js")
    assert popups.status_code == 200
    assert [(m["path"], m["referer"]) for m in fake.monitoring_loads] == [
        ("/static/sm.js", "https://store.example/"),
        (f"/dynamic/{fake.NORMAL.client_id}/popups.js", None),
    ]
