"""Statements run on the driver's own cursor, for hot paths where SQLAlchemy's execution context per
statement (or its expansion of a long IN list) cost more than the statement: a driver error is still
raised as SQLAlchemy would raise it, and `before_cursor_execute` listeners still run."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session


def run_on_driver_cursor(
    connection: Connection, statement: str, parameters: Any, *, many: bool = False
) -> list[Any]:
    """The rows of `statement` (none with `many`: an executemany of `parameters`), in the driver's
    own parameter style; IntegrityError, OperationalError, ... as SQLAlchemy raises them."""
    dbapi = connection.dialect.loaded_dbapi
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for hook in connection.dispatch.before_cursor_execute:  # as SQLAlchemy runs them (tests' hooks)
            hook(connection, cursor, statement, parameters, None, many)
        if many:
            cursor.executemany(statement, parameters)
            return []
        cursor.execute(statement, parameters)
        return cursor.fetchall()
    except dbapi.Error as exc:
        raise DBAPIError.instance(
            statement, parameters, exc, dbapi.Error, dialect=connection.dialect
        ) from exc
    finally:
        cursor.close()


# A list of keys bound as one value (an array, a JSON text): SQLAlchemy expanded an IN list of a
# batch's or a page's keys, a placeholder and a processed parameter each, on every read.
_KEYS_IN = {"postgresql": "= ANY(?)", "sqlite": "IN (SELECT value FROM json_each(?))"}


def rows_by_keys(session: Session, statement: str, store_id: int, keys: list[Any]) -> list[Any] | None:
    """`statement` (qmark style, `{keys}` where the list goes) for `store_id` and `keys` on the
    session's connection; None on a database without such a form (the caller's query runs then)."""
    if session.autoflush:
        session.flush()  # as the ORM query would: a row added in this session is read too
    connection = session.connection()
    dialect = connection.dialect.name
    form = _KEYS_IN.get(dialect)
    if form is None:
        return None
    statement = statement.format(keys=form)
    if dialect == "postgresql":
        return list(connection.exec_driver_sql(statement.replace("?", "%s"), (store_id, keys)).all())
    return list(connection.exec_driver_sql(statement, (store_id, json.dumps(keys))).all())
