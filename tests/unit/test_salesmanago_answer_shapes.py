"""Shape fuzz over every SALESmanago call the product makes: each field of a realistic answer
removed, nulled or given the wrong type, and the whole answer replaced by something that is not an
object. No call may crash (AttributeError, KeyError, TypeError, ...): it either gives a usable result
(a field it had to ignore is named on the call) or ends in a recorded outcome that says what to do
(`invalid` for an unreadable required field)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError
from smbc.salesmanago.answers import BatchEventsAdded
from smbc.salesmanago.client import (
    CallAttempt,
    SalesmanagoAccountApi,
    SalesmanagoClient,
    SalesmanagoCredentials,
)
from smbc.salesmanago.endpoints import EndpointAllowlist

CREDS = SalesmanagoCredentials.from_api_secret(
    "app3.salesmanago.com", "client123", "secret", "owner@shop.test", api_key="apikey-0123456789"
)
ALLOW = EndpointAllowlist.parse("*.salesmanago.com,*.salesmanago.pl,https://api.salesmanago.com")
CONTACT = {"email": "a@b.c", "contact": {"email": "a@b.c"}}
EVENT = {"email": "a@b.c", "contactEvent": {"contactExtEventType": "PURCHASE", "date": 1}}

Path_ = tuple[str | int, ...]


def v2(**fields: Any) -> dict[str, Any]:
    return {"success": True, "message": [], **fields}


@dataclass(frozen=True)
class Call:
    """One client method, a realistic answer to it, and what its result must look like."""

    name: str
    invoke: Callable[[SalesmanagoClient, SalesmanagoAccountApi], Any]
    answer: dict[str, Any]
    result_ok: Callable[[Any], bool]


CALLS = [
    Call(
        "login token",
        lambda c, a: a.token("app2.salesmanago.pl", "m@x.com", "pw"),
        v2(token="tok", endpoint="app3.salesmanago.com", smapp=7),
        lambda r: isinstance(r, dict) and isinstance(r["token"], str),
    ),
    Call(
        "account integration",
        lambda c, a: a.integration("app3.salesmanago.com", "tok", "key"),
        v2(shortId="cid", sha1="sha"),
        lambda r: all(isinstance(x, str) and x for x in r),
    ),
    Call(
        "v3 key create",
        lambda c, a: a.v3_create("m@x.com", "pw", "app3.salesmanago.com", "bigcommerce_1"),
        {"apiKey": "v3key"},
        lambda r: isinstance(r, str) and r,
    ),
    Call(
        "v3 key revoke",
        lambda c, a: a.v3_revoke("v3key"),
        {"apiKeyName": "bigcommerce_1"},
        lambda r: r is None,
    ),
    Call(
        "owners",
        lambda c, a: c.list_users(),
        v2(users=["a@x.com", "b@x.com"]),
        lambda r: bool(r) and all(isinstance(u, str) and "@" in u for u in r),
    ),
    Call("contact upsert", lambda c, a: c.upsert_contact(CONTACT), v2(contactId="c-1"), lambda r: r == "c-1"),
    Call(
        "integration upsert",
        lambda c, a: c.integration_upsert(CONTACT, EVENT),
        v2(contactId="c-1", eventId="e-1"),
        lambda r: r == ("c-1", "e-1"),
    ),
    Call(
        "batch upsert",
        lambda c, a: c.batch_upsert([CONTACT]),
        v2(requestId="r-1"),
        lambda r: r.requestId in ("r-1", None),
    ),
    Call(
        "contact basic",
        lambda c, a: c.contact_basic(["a@b.c"]),
        v2(contacts=[{"contactId": "c-1", "email": "a@b.c", "optedOut": False, "name": "Ann"}]),
        lambda r: isinstance(r, list) and all(isinstance(x, dict) for x in r),
    ),
    Call(
        "has contact",
        lambda c, a: c.has_contact("a@b.c"),
        v2(result=True, contactId="c-1"),
        lambda r: isinstance(r, bool),
    ),
    Call("contact delete", lambda c, a: c.delete_contact("a@b.c"), v2(), lambda r: r is None),
    Call("event add", lambda c, a: c.add_event(EVENT), v2(eventId="e-1"), lambda r: r == "e-1"),
    Call(
        "event update",
        lambda c, a: c.update_event({"contactEvent": {"eventId": "e-1", "value": 2}}),
        v2(eventId="e-1"),
        lambda r: r == "e-1",
    ),
    Call(
        "batch events",
        lambda c, a: c.add_batch_events([EVENT]),
        v2(failedContacts=["a@b.c"], createdAmount=0, failedAmount=1),
        lambda r: (
            isinstance(r, BatchEventsAdded)
            and (r.failedContacts is None or all(isinstance(x, str) for x in r.failedContacts))
            and all(isinstance(n, int | None) for n in (r.createdAmount, r.failedAmount))
        ),
    ),
]


def paths(value: Any, at: Path_ = ()) -> Iterator[Path_]:
    """Every field and list item of an answer, depth first."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield (*at, key)
            yield from paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield (*at, index)
            yield from paths(item, (*at, index))


def wrong_type(value: Any) -> Any:
    if isinstance(value, bool):
        return "maybe"
    if isinstance(value, int | float):
        return {"n": value}
    if isinstance(value, str):
        return ["a", "list"]
    if isinstance(value, list):
        return "not a list"
    if isinstance(value, dict):
        return [value]
    return 42


def mutated(answer: dict[str, Any], path: Path_, how: str) -> Any:
    changed = copy.deepcopy(answer)
    parent: Any = changed
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if how == "removed":
        del parent[last]
    elif how == "null":
        parent[last] = None
    else:
        parent[last] = wrong_type(parent[last])
    return changed


def variants() -> Iterator[Any]:
    for call in CALLS:
        for path in paths(call.answer):
            for how in ("removed", "null", "wrong type"):
                label = f"{call.name}: {'.'.join(map(str, path))} {how}"
                yield pytest.param(call, mutated(call.answer, path, how), id=label)
        for whole in (None, [call.answer], "ok", 1):
            yield pytest.param(call, whole, id=f"{call.name}: answer is {type(whole).__name__}")


def run(call: Call, answer: Any) -> tuple[Any, RemoteCallError | None, list[CallAttempt]]:
    records: list[CallAttempt] = []
    http = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(200, json=answer)))
    once = BackoffPolicy(attempts=1)
    client = SalesmanagoClient(CREDS, http=http, recorder=records.append, policy=once, allowlist=ALLOW)
    account = SalesmanagoAccountApi(http=http, recorder=records.append, policy=once, allowlist=ALLOW)
    try:
        return call.invoke(client, account), None, records
    except RemoteCallError as exc:
        return None, exc, records


@pytest.mark.parametrize("call", [pytest.param(c, id=c.name) for c in CALLS])
def test_each_realistic_answer_is_read(call: Call) -> None:
    result, error, records = run(call, call.answer)
    assert error is None and call.result_ok(result)
    assert [r.outcome for r in records] == [Outcome.SUCCESS]
    assert "ignored" not in records[0].message


@pytest.mark.parametrize(("call", "answer"), list(variants()))
def test_an_odd_answer_never_crashes_and_its_outcome_is_recorded(call: Call, answer: Any) -> None:
    result, error, records = run(call, answer)  # anything but RemoteCallError fails the test
    assert len(records) == 1
    if error is None:
        assert records[0].outcome is Outcome.SUCCESS and call.result_ok(result)
    else:
        # The v3 revoke counts a refused key as revoked: its failure is the one not re-raised.
        assert error.outcome is records[0].outcome and error.outcome is not Outcome.SUCCESS
        assert error.message and "Traceback" not in error.message


def test_a_required_field_of_the_wrong_type_is_an_invalid_outcome_naming_call_and_field() -> None:
    call = next(c for c in CALLS if c.name == "contact upsert")
    _, error, records = run(call, v2(contactId={"id": "c-1"}))
    assert error is not None and error.outcome is Outcome.INVALID
    assert records[0].outcome is Outcome.INVALID
    assert "/api/contact/upsert" in records[0].message and "contactId" in records[0].message


def test_an_opportunistic_field_of_the_wrong_type_is_ignored_with_a_warning_on_the_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = next(c for c in CALLS if c.name == "batch events")
    result, error, records = run(call, v2(failedContacts="a@b.c", failedAmount=1))
    assert error is None and result.failedContacts is None and result.failedAmount == 1
    assert records[0].outcome is Outcome.SUCCESS
    assert "failedContacts ignored" in records[0].message
    assert any(
        "addBatchContactExtEvent" in r.getMessage() and "failedContacts" in r.getMessage()
        for r in caplog.records
    )


def test_contact_ids_as_a_list_in_a_batch_upsert_answer_are_not_read() -> None:
    """Finding 2: batchupsertv2 is asynchronous; whatever `contactIds` holds, nothing reads it."""
    call = next(c for c in CALLS if c.name == "batch upsert")
    result, error, records = run(call, v2(requestId="r-9", contactIds=["c-1", "c-2"]))
    assert error is None and result.requestId == "r-9" and records[0].outcome is Outcome.SUCCESS
