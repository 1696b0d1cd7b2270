"""The real-time inbox: a verified webhook delivery becomes one `WebhookDelivery` row, and a drain of
its store is queued. Nothing here calls a remote API: BigCommerce blocks a whole domain when fewer
than 90 % of deliveries succeed, so the receiver answers fast and the workers do the rest."""

from __future__ import annotations

import functools
import hmac
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import Counter
from redis import Redis
from sqlalchemy import Connection, Dialect
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from smbc.bigcommerce.webhook_payloads import (
    DeliveryEnvelope,
    InvalidDelivery,
    parse_delivery,
    payload_digest,
    resource_id,
)
from smbc.core.clock import get_clock, utcnow
from smbc.core.encryption import get_box
from smbc.db.driver_statements import run_on_driver_cursor
from smbc.db.session import Database
from smbc.realtime.models import WebhookDelivery
from smbc.realtime.processing import QUEUED_DRAINS, drain_store_task, enqueue_drains

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024

DELIVERIES = Counter(
    "smbc_webhook_deliveries_total",
    "Webhook deliveries received, by result",
    ["result"],  # accepted | duplicate | dropped_unknown_store | dropped_uninstalled | unauthorized | ...
)


@dataclass
class Accepted:
    status: int
    result: str
    message: str = ""
    delivery_id: int | None = None
    store_id: int | None = None  # the store of an accepted delivery (its drain)


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached or written: nothing was recorded, the sender should retry."""


@dataclass(frozen=True)
class Received:
    """A delivery whose body is a valid BigCommerce webhook, with the secret header it came with."""

    envelope: DeliveryEnvelope
    secret: str | None


UNAVAILABLE = Accepted(503, "database_unavailable", "database unavailable; retry later")
FAILED = Accepted(500, "error", "delivery not recorded; retry later")
RETRY_AFTER_SECONDS = 10  # told to the sender with a 503; BigCommerce also retries on its own schedule


def parse_received(body: bytes, secret: str | None) -> Received | Accepted:
    """The body checked without the database: a `Received`, or the 400 it gets."""
    try:
        return Received(parse_delivery(body), secret)
    except InvalidDelivery as exc:
        return Accepted(400, "invalid", str(exc))


Key = tuple[int, str, str, int]  # a delivery's unique key in the inbox


def _delivery_key(store_pk: int, envelope: DeliveryEnvelope) -> Key:
    return (store_pk, envelope.scope, envelope.hash, envelope.created_at)  # the inbox's unique key


def _verify(envelope: DeliveryEnvelope, secret: str | None, found: Any) -> Accepted | None:
    """What a delivery gets for its store, or None when it is to be recorded."""
    if found is None:  # counted (smbc_webhook_deliveries_total) and logged: no store to file it under
        log.info("webhook %s for unknown store %s dropped", envelope.scope, envelope.store_hash)
        return Accepted(200, "dropped_unknown_store")
    installed = found.status == "installed"
    expected = found.webhook_secret or ""
    if installed and not (expected and hmac.compare_digest(expected, secret or "")):
        return Accepted(401, "unauthorized", "missing or wrong webhook secret")
    if not installed:
        log.info("webhook %s for uninstalled store %s dropped", envelope.scope, envelope.store_hash)
        return Accepted(200, "dropped_uninstalled")
    return None


def _row_values(store_pk: int, envelope: DeliveryEnvelope) -> dict[str, Any]:
    return {
        "store_id": store_pk,
        "scope": envelope.scope,
        "hash": envelope.hash,
        "created_at": envelope.created_at,
        "resource_id": resource_id(envelope.scope, envelope.data),
        "payload": envelope.model_dump(),
        "source": "webhook",
    }


# The receiver's statements: fixed texts whatever the batch's size, run on the driver's cursor (no
# compiling, parameter processing or result set-up by SQLAlchemy, half the INSERT's CPU), and prepared
# once by psycopg (a multi-row VALUES changes its text with the batch size: parsed again every time).
# The batch goes as one JSON document made by one json.dumps (psycopg dumps arrays item by item in
# Python). A row already there (another process, an earlier delivery) is skipped instead of read
# first; each new id comes back with its row's key, as SQLite cannot promise parameter order. The
# webhook secret is read as stored (its ciphertext) and decrypted once per ciphertext
# (`SecretBox.decrypt_remembered`), not at every request.
_DELIVERIES = WebhookDelivery.__table__
_PG_STORES_BY_HASH = (
    "SELECT hash, id, status, webhook_secret FROM stores WHERE hash = ANY(%(store_hashes)s::varchar[])"
)
_PG_INSERT = """INSERT INTO webhook_deliveries (store_id, scope, hash, created_at, resource_id, payload,
    source, status, attempts, last_error, reason, received_at)
SELECT v.store_id, v.scope, v.hash, v.created_at, v.resource_id, v.payload, v.source,
    %s, %s, %s, %s, %s
FROM json_to_recordset(%s::json) AS v(store_id integer, scope varchar, hash varchar,
    created_at bigint, resource_id varchar, payload json, source varchar)
ON CONFLICT (store_id, scope, hash, created_at) DO NOTHING
RETURNING id, store_id, scope, hash, created_at"""
# A batch whose stores were all verified on what an earlier batch read of them: one statement, which
# inserts a row only if its store is still installed with the same stored secret (checked in the
# INSERT's own snapshot, so as strict as reading the store first). A row it leaves out (a duplicate,
# or a store that changed) goes through the store read and the plain INSERT.
_PG_INSERT_IF_STORE_UNCHANGED = """INSERT INTO webhook_deliveries (store_id, scope, hash, created_at,
    resource_id, payload, source, status, attempts, last_error, reason, received_at)
SELECT v.store_id, v.scope, v.hash, v.created_at, v.resource_id, v.payload, v.source,
    %s, %s, %s, %s, %s
FROM json_to_recordset(%s::json) AS v(store_id integer, scope varchar, hash varchar,
    created_at bigint, resource_id varchar, payload json, source varchar, store_secret varchar),
    stores AS s
WHERE s.id = v.store_id AND s.status = 'installed' AND s.webhook_secret = v.store_secret
ON CONFLICT (store_id, scope, hash, created_at) DO NOTHING
RETURNING id, store_id, scope, hash, created_at"""
_SQLITE_STORES_BY_HASH = (
    "SELECT hash, id, status, webhook_secret FROM stores WHERE hash IN (SELECT value FROM json_each(?))"
)
# WHERE true: SQLite's grammar needs it between an INSERT's SELECT and its ON CONFLICT.
_SQLITE_INSERT = """INSERT INTO webhook_deliveries (store_id, scope, hash, created_at, resource_id,
    payload, source, status, attempts, last_error, reason, received_at)
SELECT json_extract(value, '$.store_id'), json_extract(value, '$.scope'), json_extract(value, '$.hash'),
    json_extract(value, '$.created_at'), json_extract(value, '$.resource_id'),
    json_extract(value, '$.payload'), json_extract(value, '$.source'), ?, ?, ?, ?, ?
FROM json_each(?) WHERE true
ON CONFLICT (store_id, scope, hash, created_at) DO NOTHING
RETURNING id, store_id, scope, hash, created_at"""
_SQLITE_INSERT_IF_STORE_UNCHANGED = """INSERT INTO webhook_deliveries (store_id, scope, hash,
    created_at, resource_id, payload, source, status, attempts, last_error, reason, received_at)
SELECT json_extract(value, '$.store_id'), json_extract(value, '$.scope'), json_extract(value, '$.hash'),
    json_extract(value, '$.created_at'), json_extract(value, '$.resource_id'),
    json_extract(value, '$.payload'), json_extract(value, '$.source'), ?, ?, ?, ?, ?
FROM json_each(?) JOIN stores AS s ON s.id = json_extract(value, '$.store_id')
WHERE s.status = 'installed' AND s.webhook_secret = json_extract(value, '$.store_secret')
ON CONFLICT (store_id, scope, hash, created_at) DO NOTHING
RETURNING id, store_id, scope, hash, created_at"""
# The columns the ORM fills from their defaults, taken from the model so the two paths cannot differ.
_DEFAULTS = tuple(_DELIVERIES.c[name].default.arg for name in ("status", "attempts", "last_error", "reason"))


@dataclass(frozen=True)
class StoreFound:
    """What the receiver reads of a store: its id, status and webhook secret (decrypted, and as stored)."""

    id: int
    status: str
    webhook_secret: str | None
    stored_secret: str | None = None


def _record_in(
    connection: Connection, received: list[Received], known: dict[str, StoreFound] | None = None
) -> list[Accepted]:
    """Verify and insert deliveries: one store read and one multi-row INSERT for all of them.
    Deliveries of stores in `known` (what earlier batches read) go first through one INSERT that
    checks their stores are unchanged; `known` is updated with what is read."""
    results: list[Accepted | None] = [None] * len(received)
    rest: Sequence[int] = range(len(received))
    if known:
        rest = _record_known(connection, received, known, results)
    if rest:
        _record_read(connection, received, rest, known, results)
    return [r for r in results if r is not None]


def _record_known(
    connection: Connection,
    received: list[Received],
    known: dict[str, StoreFound],
    results: list[Accepted | None],
) -> list[int]:
    """Insert, in one statement, the deliveries that pass `_verify` on their known store; returns the
    indexes left to the store read: any other, and any the statement did not insert."""
    rest: list[int] = []
    pending: dict[Key, list[int]] = {}
    for i, item in enumerate(received):
        store = known.get(item.envelope.store_hash)
        if store is not None and _verify(item.envelope, item.secret, store) is None:
            pending.setdefault(_delivery_key(store.id, item.envelope), []).append(i)
        else:
            rest.append(i)
    if pending:
        keys = list(pending)
        envelopes = [received[pending[key][0]].envelope for key in keys]
        secrets = [known[e.store_hash].stored_secret for e in envelopes]
        new = _insert(connection, keys, envelopes, secrets)
        for key in keys:
            first, *repeats = pending[key]
            delivery_id = new.get(key)
            if delivery_id is None:  # a duplicate, or its store changed: the store read decides
                rest.extend(pending[key])
                continue
            results[first] = Accepted(200, "accepted", delivery_id=delivery_id, store_id=key[0])
            for i in repeats:
                results[i] = Accepted(200, "duplicate")
    return sorted(rest)


def _record_read(
    connection: Connection,
    received: list[Received],
    indexes: Sequence[int],
    known: dict[str, StoreFound] | None,
    results: list[Accepted | None],
) -> None:
    """Read the stores of the deliveries at `indexes`, verify them and insert the new ones."""
    postgresql = connection.dialect.name == "postgresql"
    hashes = sorted({received[i].envelope.store_hash for i in indexes})
    if postgresql:
        found_rows = run_on_driver_cursor(connection, _PG_STORES_BY_HASH, {"store_hashes": hashes})
    else:
        found_rows = run_on_driver_cursor(connection, _SQLITE_STORES_BY_HASH, (json.dumps(hashes),))
    box = get_box()
    stores = {
        store_hash: StoreFound(store_id, status, box.decrypt_remembered(secret) if secret else None, secret)
        for store_hash, store_id, status, secret in found_rows
    }
    if known is not None:
        for store_hash in hashes:  # a store gone is forgotten
            if store_hash in stores:
                known[store_hash] = stores[store_hash]
            else:
                known.pop(store_hash, None)
    pending: dict[Key, list[int]] = {}  # key -> indexes (a batch may repeat one)
    for i in indexes:
        item = received[i]
        found = stores.get(item.envelope.store_hash)
        results[i] = _verify(item.envelope, item.secret, found)
        if results[i] is None:
            pending.setdefault(_delivery_key(found.id, item.envelope), []).append(i)
    if pending:
        keys = list(pending)
        new = _insert(connection, keys, [received[pending[key][0]].envelope for key in keys])
        for key in keys:
            first, *repeats = pending[key]
            delivery_id = new.get(key)
            if delivery_id is None:  # already recorded: by an earlier delivery or another process
                results[first] = Accepted(200, "duplicate")
            else:
                results[first] = Accepted(200, "accepted", delivery_id=delivery_id, store_id=key[0])
            for i in repeats:
                results[i] = Accepted(200, "duplicate")


def _insert(
    connection: Connection,
    keys: list[Key],
    envelopes: list[DeliveryEnvelope],
    store_secrets: list[str | None] | None = None,
) -> dict[Key, int]:
    """The new rows' ids by key; a key already in the inbox is not inserted and not returned. With
    `store_secrets`, nor is a row whose store is not installed with that stored secret."""
    values = [_row_values(key[0], e) for key, e in zip(keys, envelopes, strict=True)]
    if store_secrets is not None:
        for row, secret in zip(values, store_secrets, strict=True):
            row["store_secret"] = secret
    rows = json.dumps(values)
    received_at = utcnow()
    if connection.dialect.name == "postgresql":
        statement = _PG_INSERT if store_secrets is None else _PG_INSERT_IF_STORE_UNCHANGED
        inserted = run_on_driver_cursor(connection, statement, (*_DEFAULTS, received_at, rows))
    else:  # the timestamp as the column stores it (SQLite keeps text)
        stored_at = _stored_received_at(connection.dialect)(received_at)
        statement = _SQLITE_INSERT if store_secrets is None else _SQLITE_INSERT_IF_STORE_UNCHANGED
        inserted = run_on_driver_cursor(connection, statement, (*_DEFAULTS, stored_at, rows))
    return {tuple(key): delivery_id for delivery_id, *key in inserted}


@functools.lru_cache(maxsize=8)  # one per engine's dialect
def _stored_received_at(dialect: Dialect) -> Callable[[datetime], Any]:
    processor = _DELIVERIES.c.received_at.type.dialect_impl(dialect).bind_processor(dialect)
    return processor or (lambda value: value)


class InboxWriter:
    """Records batches of deliveries (the group commit's flushes) on one connection, checked out of
    the pool at the first batch and kept until `release`: the group commit keeps it while batches
    follow each other, so a batch does not pay a checkout, PostgreSQL's liveness ping and a reset.
    One thread at a time. Given `known`, it remembers there what it reads of stores, so that a batch
    of known stores is one statement (`_record_in`)."""

    def __init__(self, db: Database, known: dict[str, StoreFound] | None = None) -> None:
        self.db = db
        self.known = known
        self._connection: Connection | None = None

    def record(self, received: list[Received]) -> list[Accepted]:
        """Verify and record deliveries in one statement: when this returns, every "accepted" one is
        durable. A store removed meanwhile sends the batch through one statement each; raises
        `DatabaseUnavailable` when the database fails (the connection is given up: the next batch
        checks out another, which the pool checks)."""
        try:
            try:
                return self._record(received)
            except IntegrityError:
                return [self._record_alone(item) for item in received]
        except (OperationalError, InterfaceError, PoolTimeout) as exc:
            self.release(invalidate=not isinstance(exc, PoolTimeout))
            log.warning("webhook deliveries not recorded, database unavailable: %s", type(exc).__name__)
            raise DatabaseUnavailable(type(exc).__name__) from None
        except BaseException:
            self.release()
            raise

    def release(self, invalidate: bool = False) -> None:
        """Give the connection back to the pool (the next batch checks one out again); `invalidate`:
        close it instead (it failed, and the statements run on its driver cursor, out of SQLAlchemy's
        sight)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            if invalidate:
                connection.invalidate()
            connection.close()

    def _record(self, received: list[Received]) -> list[Accepted]:
        connection = self._connection
        if connection is None:
            connection = self._connection = self.db.engine.connect()
            if connection.dialect.name == "postgresql":
                # Each statement commits by itself: the store read and the INSERT are two round trips
                # instead of five (no BEGIN, duplicate read or COMMIT). The INSERT, one statement,
                # records a batch whole or not at all, and its answer comes once it is committed.
                # Reset when the connection goes back to the pool.
                connection.execution_options(isolation_level="AUTOCOMMIT")
        with connection.begin():  # PostgreSQL: commits nothing more, keeps the commit event per batch
            return _record_in(connection, received, self.known)

    def _record_alone(self, item: Received) -> Accepted:
        try:
            return self._record([item])[0]
        except IntegrityError:
            return Accepted(200, "duplicate")


def record_received(db: Database, received: list[Received]) -> list[Accepted]:
    """`InboxWriter.record` for one batch on a connection of its own."""
    writer = InboxWriter(db)
    try:
        return writer.record(received)
    finally:
        writer.release()


def accept_delivery(db: Database, body: bytes, secret: str | None) -> Accepted:
    """Verify and record one delivery; never calls a remote API. Enqueueing is the caller's job."""
    received = parse_received(body, secret)
    if isinstance(received, Accepted):
        return received
    try:
        return record_received(db, [received])[0]
    except DatabaseUnavailable:
        return UNAVAILABLE


def accept_and_enqueue(db: Database, body: bytes, secret: str | None) -> Accepted:
    outcome = accept_delivery(db, body, secret)
    enqueue_accepted([outcome])
    return outcome


def enqueue_accepted(outcomes: list[Accepted], held: Redis | None = None) -> bool:
    """A drain of each store with a delivery just recorded, all in one write (a group commit's worth:
    one message per store, none for a store whose drain is queued and not started yet: with Redis the
    marks and the messages are one round trip). False if the queue failed: the sweep finds the rows
    later (so this never raises). `held`: a `held_queue_connection` to send on."""
    stores = list(dict.fromkeys(o.store_id for o in outcomes if o.store_id is not None))
    try:
        QUEUED_DRAINS.send(drain_store_task, stores, held)
    except Exception:
        log.warning(
            "could not enqueue drains of %d stores; the sweep will pick them up", len(stores), exc_info=True
        )
        return False
    return True


def record_synthetic(
    db: Database, store_id: int, scope: str, data: dict[str, Any], *, created_at: int, source: str
) -> int | None:
    """An inbox row made by this app (reconciliation): deduplicated like a real delivery."""
    payload = {"scope": scope, "data": data, "created_at": created_at, "source": source}
    row = WebhookDelivery(
        store_id=store_id,
        scope=scope,
        hash=payload_digest({"scope": scope, "data": data, "at": created_at}),
        created_at=created_at,
        resource_id=resource_id(scope, data),
        payload=payload,
        source=source,
    )
    try:
        with db.session() as session:
            session.add(row)
            session.flush()
            return row.id
    except IntegrityError:
        return None


def recheck_cart(db: Database, store_id: int, cart_id: str, contact_id: str) -> None:
    """A cart just got (or changed) its contact: have the real-time processing look at it again, so
    a CART event skipped for want of a contact (the webhook came first) is sent now. Recorded as an
    inbox row like a delivery; no remote call here."""
    data = {"type": "cart", "id": cart_id, "contact_id": contact_id}  # a new contact: a new row
    now = int(get_clock().time())
    delivery_id = record_synthetic(
        db, store_id, "store/cart/updated", data, created_at=now, source="cart-link"
    )
    if delivery_id is not None:
        enqueue_drains([store_id])
