"""Database.pinned: a drain's short transactions on one pooled connection, each still its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from smbc.db.session import Database, open_sessions_in_this_thread


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'pinned.db'}")
    with database.connection() as connection:
        connection.execute(text("CREATE TABLE t (v INTEGER)"))
    return database


def test_blocks_in_a_pin_share_one_connection_and_each_commits(db: Database) -> None:
    with db.pinned():
        with db.connection() as first:
            first.execute(text("INSERT INTO t VALUES (1)"))
            raw = first.connection.dbapi_connection
        assert open_sessions_in_this_thread() == 0  # no transaction stays open between blocks
        with db.connection() as second:
            assert second.connection.dbapi_connection is raw
            second.execute(text("INSERT INTO t VALUES (2)"))
        with pytest.raises(RuntimeError), db.connection() as third:
            third.execute(text("INSERT INTO t VALUES (3)"))
            raise RuntimeError("rolled back")
    with db.connection() as connection:  # committed as they ended: seen from another connection
        assert connection.execute(text("SELECT v FROM t ORDER BY v")).scalars().all() == [1, 2]


def test_a_block_inside_a_pinned_block_is_a_transaction_of_its_own(db: Database) -> None:
    with db.pinned(), db.connection() as outer:
        outer.execute(text("INSERT INTO t VALUES (1)"))
        with db.pinned(), db.connection() as inner:  # a nested pin is the outer one
            assert inner is not outer
            assert inner.execute(text("SELECT count(*) FROM t")).scalar() == 0  # outer not committed
    with db.connection() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == 1


def test_without_a_pin_each_block_checks_out_its_own(db: Database) -> None:
    with db.connection() as first:
        assert not first.closed
    assert first.closed  # given back to the pool when the block ended
