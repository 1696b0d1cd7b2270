"""The SALESmanago client against httpx.MockTransport: requests, the outcome table, retries, records."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest

from smbc.core.clock import FakeClock
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError
from smbc.salesmanago.client import (
    CallAttempt,
    EndpointError,
    SalesmanagoAccountApi,
    SalesmanagoClient,
    SalesmanagoCredentials,
    UnexpectedAnswerError,
    classify,
    compute_sha,
    normalize_endpoint,
)
from smbc.salesmanago.endpoints import EndpointAllowlist
from smbc.salesmanago.payload import clean_payload

API_SECRET = "the-api-secret-xyz"
CREDS = SalesmanagoCredentials.from_api_secret(
    "app3.salesmanago.com", "client123", API_SECRET, "owner@shop.test", api_key="apikey-0123456789"
)


Handler = Callable[[httpx.Request], httpx.Response]


def make_client(
    handler: Handler, records: list[CallAttempt] | None = None, attempts: int = 3
) -> SalesmanagoClient:
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return SalesmanagoClient(
        CREDS,
        http=http,
        recorder=(records.append if records is not None else None),
        policy=BackoffPolicy(attempts=attempts, base=1.0, cap=30.0),
        context="delivery:42",
    )


def ok(**fields: object) -> httpx.Response:
    return httpx.Response(200, json={"success": True, "message": [], **fields})


# -- request building ---------------------------------------------------------------------------------


def test_endpoint_normalisation() -> None:
    assert normalize_endpoint("app3.salesmanago.com") == "https://app3.salesmanago.com"
    assert normalize_endpoint(" app3.salesmanago.com/ ") == "https://app3.salesmanago.com"
    assert normalize_endpoint("http://127.0.0.1:9100") == "http://127.0.0.1:9100"
    assert normalize_endpoint("https://app2.salesmanago.pl") == "https://app2.salesmanago.pl"
    for bad in ("", "   ", "ftp://x.com", "app3 salesmanago.com", "app3.salesmanago.com/api/x"):
        with pytest.raises(EndpointError):
            normalize_endpoint(bad)


def test_sha_is_sha1_of_key_client_secret() -> None:
    import hashlib

    assert (
        CREDS.sha
        == hashlib.sha1(
            b"apikey-0123456789client123" + API_SECRET.encode(), usedforsecurity=False
        ).hexdigest()
    )
    assert compute_sha("a", "b", "c") == hashlib.sha1(b"abc", usedforsecurity=False).hexdigest()
    assert API_SECRET not in repr(CREDS) and CREDS.sha not in repr(CREDS)


def test_clean_payload_keeps_false_and_zero_drops_empty() -> None:
    cleaned = clean_payload(
        {"a": None, "b": "", "c": [], "d": False, "e": 0, "f": " x ", "g": {"h": None, "i": [None, "", "y"]}}
    )
    assert cleaned == {"d": False, "e": 0, "f": "x", "g": {"i": ["y"]}}
    nested = clean_payload({"gone": {"x": None, "y": ("  ", [])}, "t": (" a ", 0, {}), "s": "   "})
    assert nested == {"t": ["a", 0]}


def test_upsert_sends_auth_block_and_cleaned_payload(clock: FakeClock) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok(contactId="c-1")

    client = make_client(handler)
    contact_id = client.upsert_contact(
        {"contact": {"email": "jan@example.com", "name": "", "phone": None}, "forceOptIn": False, "tags": []}
    )
    assert contact_id == "c-1"
    request = seen[0]
    assert request.method == "POST"
    assert str(request.url) == "https://app3.salesmanago.com/api/contact/upsert"
    assert request.headers["content-type"].startswith("application/json")
    body = json.loads(request.content)
    assert body == {
        "contact": {"email": "jan@example.com"},
        "forceOptIn": False,
        "clientId": "client123",
        "apiKey": "apikey-0123456789",
        "sha": CREDS.sha,
        "requestTime": int(clock.time()),
        "owner": "owner@shop.test",
    }


def test_integration_upsert_builds_both_requests() -> None:
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return ok(contactId="c-9", eventId="e-9")

    client = make_client(handler)
    result = client.integration_upsert(
        {"contact": {"email": "a@b.com"}},
        {"email": "a@b.com", "contactId": "c-9", "contactEvent": {"contactExtEventType": "PURCHASE"}},
    )
    assert result == ("c-9", "e-9")
    body = bodies[0]
    assert body["contactUpsertRequest"]["owner"] == "owner@shop.test"
    assert body["contactUpsertRequest"]["clientId"] == "client123"
    event = body["addContactExtEventRequest"]
    assert event["contactId"] == "c-9" and "email" not in event
    assert event["forceOptIn"] is False


def test_endpoints_of_each_method() -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        return ok(
            contactId="c",
            eventId="e",
            users=["a@x.com", "b@x.com"],
            contacts=[{"email": "a@b.c"}],
            result=True,
            requestId="r-1",
            failedContacts=[],
        )

    client = make_client(handler)
    assert client.add_event({"email": "a@b.c", "contactEvent": {}}) == "e"
    assert client.update_event({"contactEvent": {"eventId": "e"}}) == "e"
    assert client.batch_upsert([{"contact": {"email": "a@b.c"}}]).requestId == "r-1"
    assert client.add_batch_events([{"email": "a@b.c"}]).failedContacts == []
    assert client.contact_basic(["a@b.c"]) == [{"email": "a@b.c"}]
    assert client.has_contact("a@b.c") is True
    assert client.list_users() == ["a@x.com", "b@x.com"]
    client.delete_contact("a@b.c")
    assert paths == [
        "/api/v2/contact/addContactExtEvent",
        "/api/v2/contact/updateContactExtEvent",
        "/api/contact/batchupsertv2",
        "/api/v2/contact/addBatchContactExtEvent",
        "/api/contact/basic",
        "/api/contact/hasContact",
        "/api/user/listByClient",
        "/api/contact/delete",
    ]


def test_full_url_endpoint_kept_with_port() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return ok(users=["a@x.com"])

    creds = SalesmanagoCredentials.from_api_secret("http://127.0.0.1:9100", "c", "s", "o@x.com")
    client = SalesmanagoClient(
        creds,
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        allowlist=EndpointAllowlist.parse("http://127.0.0.1:9100"),
    )
    client.list_users()
    assert seen == ["http://127.0.0.1:9100/api/user/listByClient"]


# -- the outcome table ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, {"success": True, "contactId": "x"}, Outcome.SUCCESS),
        (200, {"success": True, "message": []}, Outcome.INVALID),  # expected field missing
        (200, {"success": "true", "contactId": "x"}, Outcome.INVALID),  # not literally true
        (200, {"success": False, "message": ["User not authenticated"]}, Outcome.CREDENTIALS),
        (200, {"success": False, "message": ["Not authenticated"]}, Outcome.CREDENTIALS),
        (401, None, Outcome.CREDENTIALS),
        (403, {"success": False}, Outcome.CREDENTIALS),
        (429, None, Outcome.RATE_LIMITED),
        (500, None, Outcome.RETRY),
        (503, {"success": False, "message": ["maintenance"]}, Outcome.RETRY),
        (200, None, Outcome.RETRY),  # an HTML page instead of JSON
        (404, None, Outcome.INVALID),
        (200, {"success": False, "message": ["Contact email is not valid"]}, Outcome.INVALID),
        (400, {"success": False, "message": ["bad"]}, Outcome.INVALID),
    ],
)
def test_classification_table(status: int, body: object, outcome: Outcome) -> None:
    assert classify(status, body, ("contactId",))[0] is outcome


def test_classification_v3() -> None:
    assert classify(200, {"apiKey": "k"}, ("apiKey",), api="v3")[0] is Outcome.SUCCESS
    assert classify(400, {"messages": ["bad key"], "reasonCode": 10}, (), api="v3")[0] is Outcome.CREDENTIALS
    warning_only = {"apiKey": "k", "problems": [{"reasonCode": 12, "message": "trimmed"}]}
    assert classify(200, warning_only, ("apiKey",), api="v3")[0] is Outcome.SUCCESS
    problem = {"problems": [{"reasonCode": 13, "message": "name|required"}]}
    outcome, message = classify(200, problem, (), api="v3")
    assert outcome is Outcome.INVALID and "name|required" in message


def test_problems_that_are_not_objects_are_not_read_as_problems() -> None:
    for problems in (["name|required", 5], 5, "bad", {"reasonCode": 13}):
        body = {"apiKey": "k", "problems": problems}
        assert classify(200, body, ("apiKey",), api="v3")[0] is Outcome.SUCCESS
        assert classify(400, {"problems": problems}, (), api="v3")[0] is Outcome.INVALID
        assert classify(200, {"success": True, "problems": problems}, ())[0] is Outcome.SUCCESS


def test_invalid_carries_salesmanago_message_and_values(clock: FakeClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"success": False, "message": ["Wrong", "email"], "values": {"email": "x"}}
        return httpx.Response(200, json=body)

    records: list[CallAttempt] = []
    with pytest.raises(RemoteCallError) as info:
        make_client(handler, records).upsert_contact({"contact": {"email": "x"}})
    assert info.value.outcome is Outcome.INVALID
    assert info.value.message.startswith("Wrong email") and '"email": "x"' in info.value.message
    assert len(records) == 1  # INVALID is never retried
    assert clock.time() == FakeClock().time()


def test_credentials_not_retried(clock: FakeClock) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, json={"success": False, "message": ["User not authenticated"]})

    with pytest.raises(RemoteCallError) as info:
        make_client(handler).list_users()
    assert info.value.outcome is Outcome.CREDENTIALS
    assert len(calls) == 1


# -- retries ----------------------------------------------------------------------------------------------


def test_5xx_retried_then_success_with_a_row_per_attempt(clock: FakeClock) -> None:
    answers = iter([httpx.Response(502), httpx.Response(503), ok(contactId="c-2")])
    records: list[CallAttempt] = []
    start = clock.time()
    contact_id = make_client(lambda r: next(answers), records).upsert_contact({"contact": {"email": "a@b.c"}})
    assert contact_id == "c-2"
    assert [(r.attempt, r.outcome, r.status) for r in records] == [
        (1, Outcome.RETRY, 502),
        (2, Outcome.RETRY, 503),
        (3, Outcome.SUCCESS, 200),
    ]
    assert all(r.endpoint == "/api/contact/upsert" and r.context == "delivery:42" for r in records)
    # Backoff waited on the fake clock (full jitter: between 0 and 1 s, then 0 and 2 s).
    assert 0 <= clock.time() - start <= 3.0


def test_retries_give_up_after_policy_attempts(clock: FakeClock) -> None:
    records: list[CallAttempt] = []
    with pytest.raises(RemoteCallError) as info:
        make_client(lambda r: httpx.Response(500), records, attempts=4).list_users()
    assert info.value.outcome is Outcome.RETRY and info.value.status == 500
    assert len(records) == 4


def test_network_error_and_timeout_are_retry(clock: FakeClock) -> None:
    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(RemoteCallError) as info:
        make_client(refused, attempts=2).list_users()
    assert info.value.outcome is Outcome.RETRY and "cannot reach app3.salesmanago.com" in info.value.message

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(RemoteCallError) as info:
        make_client(slow, attempts=1).list_users()
    assert info.value.outcome is Outcome.RETRY and "did not answer in time" in info.value.message


def test_an_event_whose_answer_never_came_is_not_sent_again_within_the_call(clock: FakeClock) -> None:
    """SALESmanago may hold an event whose answer timed out: a second attempt could duplicate it."""
    event = {"email": "a@b.com", "contactEvent": {"contactExtEventType": "PURCHASE"}}
    answers: list[Callable[[httpx.Request], httpx.Response]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)(request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = make_client(handler)
    for send in (
        lambda: client.integration_upsert({"contact": {"email": "a@b.com"}}, event),
        lambda: client.add_event(event),
    ):
        answers[:] = [slow, lambda r: ok(contactId="c-1", eventId="e-1")]
        with pytest.raises(RemoteCallError) as info:
            send()
        assert info.value.may_have_arrived and len(answers) == 1  # the second attempt never left
    # An error answer or no connection at all: it did not arrive, so the call tries again.
    answers[:] = [lambda r: httpx.Response(500), refused, lambda r: ok(eventId="e-2")]
    assert client.add_event(event) == "e-2" and answers == []
    # A contact upsert is the same whatever the number of times it arrives: tried again.
    answers[:] = [slow, lambda r: ok(contactId="c-3")]
    assert client.upsert_contact({"contact": {"email": "a@b.com"}}) == "c-3"


def test_429_honours_retry_after(clock: FakeClock) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}), ok(users=["a@x.com"])])
    start = clock.time()
    assert make_client(lambda r: next(answers)).list_users() == ["a@x.com"]
    assert clock.time() - start >= 7


def test_429_with_long_reset_is_left_to_the_job_layer(clock: FakeClock) -> None:
    records: list[CallAttempt] = []
    response = httpx.Response(429, headers={"X-Rate-Limit-Time-Reset-Ms": "3600000"})
    with pytest.raises(RemoteCallError) as info:
        make_client(lambda r: response, records).list_users()
    assert info.value.outcome is Outcome.RATE_LIMITED and info.value.retry_after == 3600.0
    assert len(records) == 1 and clock.time() == FakeClock().time()


def test_html_answer_is_unexpected(clock: FakeClock) -> None:
    page = httpx.Response(404, text="<html>Not found</html>", headers={"content-type": "text/html"})
    with pytest.raises(UnexpectedAnswerError) as info:
        make_client(lambda r: page).list_users()
    assert info.value.outcome is Outcome.INVALID


# -- secrets never recorded or logged ---------------------------------------------------------------------


def test_no_secret_in_records_or_logs(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        echo = f"bad sha {body['sha']} for key {body['apiKey']}"
        return httpx.Response(200, json={"success": False, "message": [echo]})

    records: list[CallAttempt] = []
    caplog.set_level(logging.DEBUG)
    with pytest.raises(RemoteCallError) as info:
        make_client(handler, records).upsert_contact({"contact": {"email": "a@b.c"}})
    texts = [caplog.text, info.value.message] + [f"{r.endpoint} {r.message}" for r in records]
    for text in texts:
        for secret in (CREDS.sha, CREDS.api_key, API_SECRET):
            assert secret not in text


def test_account_api_login_calls_and_password_hidden(clock: FakeClock) -> None:
    seen: list[tuple[str, dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        seen.append((str(request.url), body))
        if request.url.path == "/api/authorization/token":
            return ok(token="tok", endpoint="app3.salesmanago.com", smapp=7)
        if request.url.path == "/api/account/integration":
            return ok(shortId="cid", sha1="shaX")
        if request.url.path == "/v3/auth/create":
            return httpx.Response(200, json={"apiKey": "v3key"})
        return httpx.Response(400, json={"messages": [f"oops {body}"], "reasonCode": 13})

    records: list[CallAttempt] = []
    api = SalesmanagoAccountApi(
        v3_url="https://api.example.test",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        recorder=records.append,
        secrets_to_hide=("pa55word",),
    )
    assert api.token("app2.salesmanago.pl", "m@x.com", "pa55word")["token"] == "tok"
    assert api.integration("app3.salesmanago.com", "tok", "key1") == ("cid", "shaX")
    assert api.v3_create("m@x.com", "pa55word", "https://app3.salesmanago.com", "bigcommerce_1") == "v3key"
    assert seen[2][1]["endpoint"] == "app3.salesmanago.com" and seen[2][1]["expiry"] == "NEVER"
    with pytest.raises(RemoteCallError) as info:
        api.v3_revoke("pa55word")
    assert "pa55word" not in info.value.message
    assert all("pa55word" not in r.message for r in records)


def test_v3_revoke_of_unknown_key_counts_as_revoked() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["API-KEY"] == "gone"
        return httpx.Response(400, json={"messages": ["bad key"], "reasonCode": 10})

    api = SalesmanagoAccountApi(http=httpx.Client(transport=httpx.MockTransport(handler)))
    api.v3_revoke("gone")  # no error


def test_batch_upsert_details_cleaned_already_are_sent_as_plain_ones() -> None:
    # A detail given cleaned is not walked again by the client: the bytes sent must not change.
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return ok(requestId="r-1")

    client = make_client(handler)
    details = [
        {"contact": {"email": "a@b.c"}, "tags": ["T"]},
        {"owner": "own@x.io", "contact": {"email": "d@e.f"}, "forceOptIn": False},
        {"contact": {"email": "g@h.i"}, "owner": "late@x.io"},
    ]
    for detail in details:
        client.batch_upsert([detail])
        client.batch_upsert([clean_payload(detail)])
    for plain, cleaned in zip(bodies[::2], bodies[1::2], strict=True):
        assert json.loads(cleaned)["upsertDetails"] == json.loads(plain)["upsertDetails"]
        assert cleaned.split(b'"requestTime"')[0] == plain.split(b'"requestTime"')[0]
