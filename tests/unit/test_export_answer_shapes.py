"""Shape fuzz one level up, for the exports: each BigCommerce read an export makes (the counts, the
subscriber pages and look-ups, the customer and order pages) answered with every field removed,
nulled or given the wrong type. The export never stops on a traceback or waits to try a bug again:
it ends done (what it could not use ignored) or failed with the unreadable answer as its reason,
recorded on the call."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from test_bigcommerce_answer_shapes import CUSTOMER, ORDER, SUBSCRIBER, V2_DATE, mutations, v3_list

from smbc.bigcommerce.client import BigCommerceClient
from smbc.bigcommerce.limiter import LocalLimiter
from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.remote_calls import BackoffPolicy, RemoteCall
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.export import runner
from smbc.export.models import Export, ExportKind
from smbc.salesmanago.answers import BatchAccepted, BatchEventsAdded

FEBRUARY = (datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 28, 23, 59, 59, tzinfo=UTC))
IN_FEBRUARY = "2026-02-05T10:00:00Z"
ORDER_IN_FEBRUARY = {**ORDER, "date_created": "Thu, 05 Feb 2026 10:00:00 +0000", "date_modified": V2_DATE}
CUSTOMER_IN_FEBRUARY = {**CUSTOMER, "date_created": IN_FEBRUARY}
# Few subscribers: the export reads their pages; many: it looks each exported e-mail up instead.
FEW_SUBSCRIBERS = v3_list(SUBSCRIBER)
MANY_SUBSCRIBERS = {**v3_list(SUBSCRIBER), "meta": {"pagination": {"total": 5000, "total_pages": 5000}}}

Query = httpx.QueryParams


@dataclass(frozen=True)
class Read:
    """One read an export makes: which export, how to recognise its request, its usual answer."""

    name: str
    kind: ExportKind
    is_it: Callable[[str, Query], bool]
    answer: Any
    subscribers: dict[str, Any] = field(default_factory=lambda: FEW_SUBSCRIBERS)
    # How deep the fuzz goes (dots in a field's path); deeper fields are the client fuzz's.
    depth: int = 2
    # Fields of the items a count reads only `meta` of (the item fields are the page reads' fuzz).
    items_fuzzed: bool = True


def _subscribers(path: str) -> bool:
    return path.endswith("/v3/customers/subscribers")


READS = [
    Read(
        "customer count",
        ExportKind.CONTACTS,
        lambda path, q: path.endswith("/v3/customers") and q.get("limit") == "1",
        v3_list(CUSTOMER_IN_FEBRUARY),
        items_fuzzed=False,
    ),
    Read(
        "subscriber count",
        ExportKind.CONTACTS,
        lambda path, q: _subscribers(path) and q.get("limit") == "1",
        FEW_SUBSCRIBERS,
        items_fuzzed=False,
    ),
    Read(
        "subscriber page",
        ExportKind.CONTACTS,
        lambda path, q: _subscribers(path) and q.get("limit") == "250" and "email" not in q,
        FEW_SUBSCRIBERS,
    ),
    Read(
        "subscriber look-up",
        ExportKind.CONTACTS,
        lambda path, q: _subscribers(path) and "email" in q,
        v3_list(SUBSCRIBER),
        subscribers=MANY_SUBSCRIBERS,
    ),
    Read(
        "customer page",
        ExportKind.CONTACTS,
        lambda path, q: path.endswith("/v3/customers") and q.get("limit") != "1",
        v3_list(CUSTOMER_IN_FEBRUARY),
    ),
    Read("order count", ExportKind.EVENTS, lambda path, q: path.endswith("/v2/orders/count"), {"count": 1}),
    Read(
        "order page",
        ExportKind.EVENTS,
        lambda path, q: path.endswith("/v2/orders") and "min_id" not in q,
        [ORDER_IN_FEBRUARY],
        depth=1,  # the order's own fields; its addresses and consignments: the delivery-level fuzz
    ),
]


def usual_answer(read: Read, path: str, query: Query) -> Any:
    """What a well-behaved BigCommerce answers to every other request of the export."""
    if "after" in query or int(query.get("page", 1)) > 1:
        return {"data": [], "meta": {}}
    if path.endswith("/v2/orders") and "min_id" in query:
        return None  # 204: the keyset list has no more
    if path.endswith("/v2/orders/count"):
        return {"count": 1}
    if path.endswith("/v2/orders"):
        return [ORDER_IN_FEBRUARY]
    if _subscribers(path):
        return v3_list(SUBSCRIBER) if "email" in query or query.get("limit") != "1" else read.subscribers
    if path.endswith("/v3/customers"):
        return v3_list(CUSTOMER_IN_FEBRUARY)
    raise AssertionError(f"the export asked for {path}")


class QuietSalesmanago:
    """SALESmanago taking everything (its own answers are fuzzed in test_salesmanago_answer_shapes)."""

    def batch_upsert(self, upserts: list[dict[str, Any]]) -> BatchAccepted:
        return BatchAccepted(requestId="r-1")

    def upsert_contact(self, payload: dict[str, Any]) -> str:
        return "contact-1"

    def add_batch_events(self, events: list[dict[str, Any]]) -> BatchEventsAdded:
        return BatchEventsAdded(createdAmount=len(events), failedAmount=0)


@dataclass
class ExportWorld:
    db: Database
    store_id: int
    answers: list[Callable[[str, Query], Any]] = field(default_factory=list)

    def handler(self, request: httpx.Request) -> httpx.Response:
        body = self.answers[-1](request.url.path, request.url.params)
        if body is None:
            return httpx.Response(204)
        return httpx.Response(
            200, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
        )

    def run(self, kind: ExportKind) -> Export:
        with self.db.session() as session:
            row = Export(
                store_id=self.store_id,
                kind=kind.value,
                date_from=date(2026, 2, 1),
                date_to=date(2026, 2, 28),
                from_utc=FEBRUARY[0],
                to_utc=FEBRUARY[1],
                cursor={},
                skipped={},
                failed={},
                messages=[],
            )
            session.add(row)
            session.flush()
            export_id = row.id
        runner.run_export(export_id, db=self.db, time_slice=None)
        with self.db.session() as session:
            found = session.get(Export, export_id)
            assert found is not None
            session.expunge(found)
            return found

    def invalid_calls(self, export_id: int) -> list[str]:
        with self.db.session() as session:
            return list(
                session.scalars(
                    select(RemoteCall.message).where(
                        RemoteCall.context == f"export:{export_id}", RemoteCall.outcome == "invalid"
                    )
                )
            )


@pytest.fixture
def world(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[ExportWorld]:
    clock = FakeClock(datetime(2026, 3, 2, tzinfo=UTC))
    previous = set_clock(clock)
    runtime = init_runtime(settings, migrate=True)
    try:
        with runtime.db.session() as session:
            store = Store(
                hash="abc123", access_token="token", webhook_secret="x", sites=[], status="installed"
            )
            session.add(store)
            session.flush()
            store_id = store.id
        world = ExportWorld(runtime.db, store_id)
        http = httpx.Client(transport=httpx.MockTransport(world.handler))

        def bigcommerce(store: Store, **options: Any) -> BigCommerceClient:
            return BigCommerceClient(
                store.hash,
                "token",
                "https://api.example.test",
                http=http,
                recorder=options.get("recorder"),
                policy=BackoffPolicy(attempts=1),
                limiter=LocalLimiter(clock=clock),
                clock=clock,
                store_id=store.id,
                context=options.get("context", ""),
            )

        monkeypatch.setattr(runner, "bc_for_store", bigcommerce)
        monkeypatch.setattr(runner, "salesmanago_client", lambda *args, **options: QuietSalesmanago())
        monkeypatch.setattr(runner, "enqueue_export", lambda export_id, delay=None: None)
        # Dozens of runs in one test process: no full collection of the test process's heap before each.
        monkeypatch.setattr(runner, "_collector_settled", contextlib.nullcontext)
        yield world
    finally:
        set_clock(previous)
        close_runtime()


@pytest.mark.parametrize("read", READS, ids=[r.name for r in READS])
def test_every_answer_shape_of_an_export_read_ends_the_export_done_or_failed_with_the_reason(
    world: ExportWorld, read: Read
) -> None:
    world.answers.append(lambda path, query: usual_answer(read, path, query))
    usual = world.run(read.kind)
    assert (usual.status, usual.sent) == ("done", 1), (usual.status, usual.messages)

    problems = []
    for what, changed in mutations(read.answer):
        if what.count(".") > read.depth or (not read.items_fuzzed and what.startswith("data.0.")):
            continue

        def answer(path: str, query: Query, changed: Any = changed) -> Any:
            return changed if read.is_it(path, query) else usual_answer(read, path, query)

        world.answers.append(answer)
        row = world.run(read.kind)
        if row.status == "done":
            continue
        invalid = world.invalid_calls(row.id)
        if row.status != "failed":
            problems.append(f"{what}: left {row.status} ({row.last_error})")
        elif "unreadable answer" not in row.last_error or not invalid:
            problems.append(f"{what}: failed without the unreadable answer recorded ({row.last_error})")
    assert problems == []


def test_an_order_whose_creation_date_cannot_be_read_fails_the_export_with_that_reason(
    world: ExportWorld,
) -> None:
    unreadable = {**ORDER_IN_FEBRUARY, "date_created": "yesterday"}
    world.answers.append(
        lambda path, query: (
            [unreadable]
            if path.endswith("/v2/orders") and "min_id" not in query
            else None
            if path.endswith("/v2/orders")
            else {"count": 1}
        )
    )
    row = world.run(ExportKind.EVENTS)
    assert row.status == "failed" and row.sent == 0
    assert "date_created" in row.last_error and "unreadable answer" in row.last_error
    assert any("date_created" in message for message in world.invalid_calls(row.id))
