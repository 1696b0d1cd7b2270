"""Engine, sessions and migrations."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Where a Core statement runs: a unit of work's Session, or a Core-only transaction's Connection.
StatementRunner = Session | Connection


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite:"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        in_memory = not path or path == ":memory:"  # one connection (SingletonThreadPool): no sizes
        pool = {} if in_memory else {"pool_size": 24, "max_overflow": 16}
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    # A bounded connect time, so /readyz answers 503 instead of hanging when the server is gone.
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    # pool_size above a worker's threads (16 at most by default): connections past it are closed on
    # return, and opening one per checkout cost a worker more than its queries.
    engine = create_engine(url, pool_pre_ping=True, pool_size=24, max_overflow=16, connect_args=connect_args)
    if engine.dialect.name == "postgresql":
        # Rows of a plain INSERT as one multi-row statement, as SQLAlchemy does for psycopg2: psycopg's
        # executemany runs a pipeline of its own (a drain's call records cost more than its finish).
        engine.dialect.use_insertmanyvalues_wo_returning = True
    return engine


class _OpenSessions(threading.local):
    count = 0


_open_sessions = _OpenSessions()


def open_sessions_in_this_thread() -> int:
    """How many `Database.session()` or `connection()` blocks the calling thread is inside (any database)."""
    return _open_sessions.count


class _Pinned(threading.local):
    connection: Connection | None = None


class Database:
    """One engine and session factory for the process."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._pinned = _Pinned()

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Until the block ends, the calling thread's `connection()` blocks reuse one pooled connection,
        each still a transaction of its own: a drain's several short transactions cost one checkout
        (on PostgreSQL one liveness ping) instead of one each. No transaction stays open between them."""
        if self._pinned.connection is not None:  # already pinned by an outer block: that one serves
            yield
            return
        connection = self.engine.connect()
        self._pinned.connection = connection
        try:
            yield
        finally:
            self._pinned.connection = None
            connection.close()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back on error."""
        _open_sessions.count += 1
        try:
            with self.sessions() as session, session.begin():
                yield session
        finally:
            _open_sessions.count -= 1

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A unit of work of Core statements only (no ORM object is loaded or added): committed when
        the block ends, rolled back on error, without a Session's bookkeeping (about 70 µs less)."""
        _open_sessions.count += 1
        try:
            pinned = self._pinned.connection
            if pinned is not None and not pinned.in_transaction():
                with pinned.begin():
                    yield pinned
            else:  # not pinned, or nested in a block of the pinned connection: a transaction of its own
                with self.engine.begin() as connection:
                    yield connection
        finally:
            _open_sessions.count -= 1

    def upgrade(self) -> None:
        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Apply every migration (all heads: each feature area keeps its own branch)."""
    from alembic import command

    command.upgrade(alembic_config(engine), "heads")


def insert_ignoring_conflicts(
    session: StatementRunner, table: Any, rows: list[dict[str, Any]], conflict_columns: list[str]
) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL, as one executemany: for ledger rows
    that another worker may have inserted first."""
    if not rows:
        return
    target = getattr(table, "__table__", table)  # a mapped class's table: a Core INSERT, no ORM bulk path
    dialect = session.dialect.name if isinstance(session, Connection) else session.get_bind().dialect.name
    session.execute(_insert_ignoring(dialect, target, tuple(conflict_columns)), rows)


def insert_one_ignoring_conflict(
    session: StatementRunner, table: Any, row: dict[str, Any], conflict_columns: list[str]
) -> bool:
    """`insert_ignoring_conflicts` for one row: whether it went in (False: another worker's was there)."""
    target = getattr(table, "__table__", table)
    dialect = session.dialect.name if isinstance(session, Connection) else session.get_bind().dialect.name
    inserted = session.execute(_insert_ignoring(dialect, target, tuple(conflict_columns)), row)
    return inserted.rowcount == 1  # type: ignore[attr-defined]


def conflict_insert(dialect: str, table: Any) -> Any:
    """An INSERT on `table` that takes the dialect's `ON CONFLICT` clauses (SQLite or PostgreSQL)."""
    return (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)


@functools.lru_cache(maxsize=64)
def _insert_ignoring(dialect: str, table: Any, conflict_columns: tuple[str, ...]) -> Any:
    """Built once per table: SQLAlchemy computes a statement's cache key once per object."""
    return conflict_insert(dialect, table).on_conflict_do_nothing(index_elements=list(conflict_columns))
