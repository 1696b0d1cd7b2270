"""The receiver over real HTTP: deliveries arriving together share one commit, each answered after
it; while the database fails it answers 503 with Retry-After on a connection it keeps open, and it
takes deliveries again by itself once the database is back."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from huey.storage import RedisStorage
from sqlalchemy import event, func, select, text

from smbc.core import jobs
from smbc.core.config import Settings
from smbc.core.http_server import BackgroundServer
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.realtime import group_commit as group_commit_module
from smbc.realtime.group_commit import GroupCommit
from smbc.realtime.inbox import InboxWriter, Received, parse_received, record_received
from smbc.realtime.models import WebhookDelivery
from smbc.stores.hooks import SECRET_HEADER, WEBHOOK_PATH
from smbc.web.app import create_app
from support import wait_for

STORE = "gc1"
SECRET = "gc-secret"


def delivery(n: int) -> bytes:
    return json.dumps(
        {
            "scope": "store/customer/updated",
            "store_id": "1",
            "data": {"type": "customer", "id": n},
            "hash": f"{n:040x}",
            "created_at": 1767225600 + n,
            "producer": f"stores/{STORE}",
        }
    ).encode()


@pytest.fixture
def server(backend_settings: Settings) -> Iterator[BackgroundServer]:
    app = create_app(backend_settings, start_workers=False)
    with BackgroundServer(app) as srv:
        with app.state.runtime.db.session() as s:
            s.add(Store(hash=STORE, store_id="1", webhook_secret=SECRET, access_token="t"))
        jobs.huey.flush()
        yield srv


def database(server: BackgroundServer) -> Database:
    return server.app.state.runtime.db


def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, dict[str, str], Any]:
    conn.request("POST", WEBHOOK_PATH, body=body, headers={SECRET_HEADER: SECRET})
    answer = conn.getresponse()
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}, json.loads(answer.read())


def connection(server: BackgroundServer) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(server.host, server.port, timeout=30)


def inbox_count(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(WebhookDelivery)) or 0


def test_deliveries_arriving_together_share_one_commit(server: BackgroundServer) -> None:
    db = database(server)
    commits: list[int] = []
    first_insert = threading.Event()
    release = threading.Event()

    def hold_first_insert(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if (
            statement.lstrip().upper().startswith("INSERT INTO WEBHOOK_DELIVERIES")
            and not first_insert.is_set()
        ):
            first_insert.set()
            release.wait(30)  # the writer is busy: the others queue up behind it

    event.listen(db.engine, "before_cursor_execute", hold_first_insert)
    event.listen(db.engine, "commit", lambda _conn: commits.append(1))
    try:
        with ThreadPoolExecutor(20) as pool:
            first = pool.submit(post, connection(server), delivery(0))
            wait_for(first_insert.is_set, "the first delivery's INSERT")
            rest = [pool.submit(post, connection(server), delivery(n)) for n in range(1, 20)]
            group = server.app.state.inbox_group_commit
            wait_for(lambda: len(group._waiting) == 19, lambda: f"{len(group._waiting)} of 19 waiting")
            assert not any(f.done() for f in [first, *rest])  # nobody is answered before its commit
            commits.clear()
            release.set()
            answers = [f.result() for f in [first, *rest]]
    finally:
        event.remove(db.engine, "before_cursor_execute", hold_first_insert)
    assert [(status, body["result"]) for status, _, body in answers] == [(200, "accepted")] * 20
    assert len(commits) == 2  # the first delivery's transaction, then one for the 19 that waited
    assert inbox_count(db) == 20
    # One drain of the store, sent after the first answer; the second batch's store already has one
    # queued and not started, so it sends none.
    group.wait_for_messages(timeout=30)
    assert jobs.huey.pending_count() == 1


def test_an_answer_does_not_wait_for_its_queue_message(
    server: BackgroundServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    sent: list[list[str]] = []

    def slow_queue(outcomes: list[Any], _held: Any = None) -> bool:
        release.wait(30)
        sent.append([outcome.result for outcome in outcomes])
        return True

    monkeypatch.setattr(group_commit_module, "enqueue_accepted", slow_queue)
    try:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
        status, _, body = post(conn, delivery(1))
        # Answered once committed: the row is due, so the sweep finds it if the message never goes out.
        assert (status, body["result"]) == (200, "accepted") and sent == []
        assert inbox_count(database(server)) == 1
    finally:
        release.set()
    server.app.state.inbox_group_commit.wait_for_messages(timeout=30)
    assert sent == [["accepted"]]


def test_the_writer_flushes_the_next_batch_while_the_event_loop_is_busy(server: BackgroundServer) -> None:
    db = database(server)
    group = GroupCommit(db)
    first_insert, release, second_insert = threading.Event(), threading.Event(), threading.Event()
    inserts: list[str] = []

    def hold_first_insert(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO WEBHOOK_DELIVERIES"):
            inserts.append(statement)
            if len(inserts) == 1:
                first_insert.set()
                release.wait(30)
            else:
                second_insert.set()

    def received(n: int) -> Received:
        item = parse_received(delivery(n), SECRET)
        assert isinstance(item, Received)
        return item

    async def scenario() -> tuple[bool, list[str]]:
        first = asyncio.ensure_future(group.record(received(0)))
        await asyncio.to_thread(first_insert.wait, 30)
        rest = [asyncio.ensure_future(group.record(received(n))) for n in range(1, 6)]
        await asyncio.sleep(0)  # each of them is waiting for the next flush now
        assert len(group._waiting) == 5
        release.set()
        # The event loop is busy (a blocking wait stands for a burst of requests): the writer goes on
        flushed_meanwhile = second_insert.wait(10)
        answers = await asyncio.gather(first, *rest)
        return flushed_meanwhile, [answer.result for answer in answers]

    event.listen(db.engine, "before_cursor_execute", hold_first_insert)
    try:
        flushed_meanwhile, results = asyncio.run(scenario())
    finally:
        event.remove(db.engine, "before_cursor_execute", hold_first_insert)
        release.set()
    assert flushed_meanwhile and results == ["accepted"] * 6
    assert inbox_count(db) == 6


def test_a_batch_is_one_insert_and_each_delivery_gets_its_own_row_id(server: BackgroundServer) -> None:
    db = database(server)
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0].upper())

    batch = [parse_received(delivery(n), SECRET) for n in range(30)]
    event.listen(db.engine, "before_cursor_execute", note)
    try:
        outcomes = record_received(db, [item for item in batch if isinstance(item, Received)])
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    assert statements.count("INSERT") == 1  # SQLite made one per row while ids came in parameter order
    with db.session() as s:
        hashes = {row.id: row.hash for row in s.execute(select(WebhookDelivery.id, WebhookDelivery.hash))}
    assert [hashes[outcome.delivery_id] for outcome in outcomes] == [f"{n:040x}" for n in range(30)]


def test_a_delivery_sent_twice_in_one_batch_is_one_row(server: BackgroundServer) -> None:
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: post(connection(server), delivery(7)), range(4)))
    assert sorted(body["result"] for _, _, body in answers) == [
        "accepted",
        "duplicate",
        "duplicate",
        "duplicate",
    ]
    assert inbox_count(database(server)) == 1


def test_database_down_answers_503_with_retry_after_and_recovers_by_itself(server: BackgroundServer) -> None:
    db = database(server)
    driver_error = db.engine.dialect.loaded_dbapi.OperationalError

    def database_down(*_args: Any) -> None:
        raise driver_error("server closed the connection unexpectedly")  # what a restart looks like

    conn = connection(server)
    assert post(conn, delivery(1))[0] == 200
    kept_alive = conn.sock
    event.listen(db.engine, "before_cursor_execute", database_down)
    try:
        for n in (2, 3, 4):
            status, headers, body = post(conn, delivery(n))
            assert (status, body["error"]) == (503, "database unavailable; retry later")
            assert int(headers["retry-after"]) > 0 and headers.get("connection") != "close"
            assert conn.sock is kept_alive  # the same connection answers: nothing was reset
    finally:
        event.remove(db.engine, "before_cursor_execute", database_down)
    status, _, body = post(conn, delivery(2))  # BigCommerce's retry, once the database is back
    assert (status, body["result"]) == (200, "accepted") and conn.sock is kept_alive
    assert inbox_count(db) == 2  # only what was answered 200


def received_delivery(n: int) -> Received:
    item = parse_received(delivery(n), SECRET)
    assert isinstance(item, Received)
    return item


def test_a_recorded_row_has_what_the_model_would_have_given_it(server: BackgroundServer) -> None:
    db = database(server)
    item = received_delivery(3)
    [outcome] = record_received(db, [item])
    with db.session() as s:
        row = s.get(WebhookDelivery, outcome.delivery_id)
        assert row is not None
        model = WebhookDelivery(store_id=row.store_id, scope=row.scope, hash="model", created_at=0)
        s.add(model)
        s.flush()  # the ORM's own defaults, for comparison
        columns = (
            "status",
            "attempts",
            "next_attempt_at",
            "locked_at",
            "last_error",
            "reason",
            "processed_at",
        )
        assert {c: getattr(row, c) for c in columns} == {c: getattr(model, c) for c in columns}
        assert abs((row.received_at - model.received_at).total_seconds()) < 60
        assert (row.source, row.resource_id) == ("webhook", "3")
        assert row.payload == item.envelope.model_dump()
        # As stored, not only as read back: SQLite keeps timestamps as text, compared as text
        raw = dict(
            s.execute(select(WebhookDelivery.id, text("received_at")).select_from(WebhookDelivery)).all()
        )
        assert type(raw[row.id]) is type(raw[model.id])
        if isinstance(raw[row.id], str):
            assert len(raw[row.id]) == len(raw[model.id]) and "+" not in raw[row.id]
        s.rollback()


def test_a_delivery_already_recorded_is_a_duplicate_beside_new_ones(server: BackgroundServer) -> None:
    db = database(server)
    assert [o.result for o in record_received(db, [received_delivery(1)])] == ["accepted"]
    outcomes = record_received(db, [received_delivery(2), received_delivery(1), received_delivery(3)])
    assert [o.result for o in outcomes] == ["accepted", "duplicate", "accepted"]
    assert outcomes[1].delivery_id is None and outcomes[0].delivery_id != outcomes[2].delivery_id
    assert inbox_count(db) == 3


def test_a_busy_writer_keeps_one_connection_and_gives_it_back(server: BackgroundServer) -> None:
    db = database(server)
    group = GroupCommit(db)
    first_insert, release = threading.Event(), threading.Event()
    checkouts: list[int] = []

    def hold_first_insert(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if (
            statement.lstrip().upper().startswith("INSERT INTO WEBHOOK_DELIVERIES")
            and not first_insert.is_set()
        ):
            first_insert.set()
            release.wait(30)

    async def scenario() -> list[str]:
        first = asyncio.ensure_future(group.record(received_delivery(0)))
        await asyncio.to_thread(first_insert.wait, 30)
        rest = [asyncio.ensure_future(group.record(received_delivery(n))) for n in range(1, 4)]
        await asyncio.sleep(0)
        release.set()
        return [answer.result for answer in await asyncio.gather(first, *rest)]

    event.listen(db.engine, "before_cursor_execute", hold_first_insert)
    event.listen(db.engine.pool, "checkout", lambda *_: checkouts.append(1))
    try:
        results = asyncio.run(scenario())
    finally:
        event.remove(db.engine, "before_cursor_execute", hold_first_insert)
        release.set()
    assert results == ["accepted"] * 4
    assert len(checkouts) == 1  # two batches, one connection
    wait_for(lambda: db.engine.pool.checkedout() == 0, "the connection back in the pool")


async def one_by_one(group: GroupCommit) -> list[str]:
    """Three deliveries, each alone in its batch, well within the writer's linger."""
    results = []
    for n in range(3):
        results.append((await group.record(received_delivery(n))).result)
        await asyncio.sleep(0.01)
    return results


def test_an_idle_writer_waits_a_moment_for_the_next_delivery_on_its_connection(
    server: BackgroundServer,
) -> None:
    db = database(server)
    group = GroupCommit(db)
    checkouts: list[int] = []

    def count_checkout(*_args: Any) -> None:
        checkouts.append(1)

    event.listen(db.engine.pool, "checkout", count_checkout)
    try:
        assert asyncio.run(one_by_one(group)) == ["accepted"] * 3
    finally:
        event.remove(db.engine.pool, "checkout", count_checkout)
    assert len(checkouts) == 1  # three batches, one connection
    wait_for(lambda: db.engine.pool.checkedout() == 0, "the connection back in the pool after the linger")
    group.wait_for_messages(timeout=30)
    assert jobs.huey.pending_count() == 1  # the store's drain, queued by the first batch


@pytest.mark.parametrize("backend_settings", ["postgres+redis"], indirect=True)  # the queue is Redis
def test_a_busy_writer_sends_its_drain_messages_on_one_redis_connection(
    server: BackgroundServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = jobs.huey.storage
    assert isinstance(storage, RedisStorage)
    pool = storage.conn.connection_pool
    checkouts: list[int] = []
    get_connection = pool.get_connection

    def count_checkout(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("inbox-writer"):
            checkouts.append(1)
        return get_connection(*args, **kwargs)

    monkeypatch.setattr(pool, "get_connection", count_checkout)
    group = GroupCommit(database(server))

    assert asyncio.run(one_by_one(group)) == ["accepted"] * 3
    group.wait_for_messages(timeout=30)
    assert len(checkouts) == 1  # three batches' marks and messages, one connection
    assert jobs.huey.pending_count() == 1  # the store's drain, queued by the first batch
    wait_for(lambda: pool._in_use_connections == set(), "the Redis connection back in the pool")


def test_a_failing_queue_is_left_alone_for_a_while(
    server: BackgroundServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    group = GroupCommit(database(server))
    calls: list[list[str]] = []

    def queue_down(outcomes: list[Any], _held: Any = None) -> bool:
        calls.append([outcome.result for outcome in outcomes])
        return False

    monkeypatch.setattr(group_commit_module, "enqueue_accepted", queue_down)

    async def at_once() -> list[str]:
        return [(await group.record(received_delivery(n))).result for n in range(3)]

    assert asyncio.run(at_once()) == ["accepted"] * 3  # recorded: the sweep finds them
    group.wait_for_messages(timeout=30)
    assert calls == [["accepted"]]  # one try, then none for QUEUE_DOWN_SECONDS


def insert_statements(db: Database, record: Any) -> tuple[Any, list[str]]:
    """What `record()` returns, and the first word of each statement it ran."""
    statements: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0].upper())

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        return record(), statements
    finally:
        event.remove(db.engine, "before_cursor_execute", note)


def test_a_batch_of_known_stores_is_one_statement_that_still_checks_the_store(
    server: BackgroundServer,
) -> None:
    db = database(server)
    known: dict[str, Any] = {}
    writer = InboxWriter(db, known)
    try:
        first, statements = insert_statements(db, lambda: writer.record([received_delivery(1)]))
        assert [o.result for o in first] == ["accepted"] and statements == ["SELECT", "INSERT"]
        batch = [received_delivery(2), received_delivery(1), received_delivery(2)]
        outcomes, statements = insert_statements(db, lambda: writer.record(batch))
        assert [o.result for o in outcomes] == ["accepted", "duplicate", "duplicate"]
        # The known store's INSERT, then the store read and INSERT for the one it left out
        assert statements == ["INSERT", "SELECT", "INSERT"]
        new, statements = insert_statements(db, lambda: writer.record([received_delivery(3)]))
        assert [o.result for o in new] == ["accepted"] and statements == ["INSERT"]
        # The store changes behind the writer's back: its INSERT leaves the rows out, the read decides
        with db.session() as s:
            store = s.scalars(select(Store).where(Store.hash == STORE)).one()
            store.webhook_secret = "rotated-secret"
        assert [o.result for o in writer.record([received_delivery(4)])] == ["unauthorized"]
        with db.session() as s:
            s.scalars(select(Store).where(Store.hash == STORE)).one().status = "uninstalled"
        assert [o.result for o in writer.record([received_delivery(5)])] == ["dropped_uninstalled"]
    finally:
        writer.release()
    assert inbox_count(db) == 3
