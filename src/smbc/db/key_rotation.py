"""`smbc keys rotate`: re-encrypt every `EncryptedText` column of every table under the newest key of
SMBC_SECRET_KEY, so the older keys can then be removed from it.

Batches of rows in primary-key order, each committed on its own: a rotation killed half-way is
finished by running it again (values already under the newest key are counted and left alone). A
value is only replaced if it is still the one that was read, so the app may keep running meanwhile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Column, Row, Table, Text, select, type_coerce, update
from sqlalchemy.orm import Session

from smbc.core.encryption import SecretBox
from smbc.db.base import Base
from smbc.db.models import _import_feature_models
from smbc.db.session import Database
from smbc.db.types import EncryptedText

BATCH_SIZE = 200


@dataclass
class TableRotation:
    """What one table's rotation found, counted per value (a row may hold several secrets)."""

    table: str
    rotated: int = 0  # re-encrypted under the newest key now
    current: int = 0  # already under the newest key
    unreadable: int = 0  # no configured key reads it: keep the old keys until this is resolved


BatchDone = Callable[[TableRotation], None]


def encrypted_tables() -> list[tuple[Table, list[Column]]]:
    """Every table with at least one EncryptedText column, and those columns (in a stable order)."""
    _import_feature_models()
    found = []
    for table in sorted(Base.metadata.tables.values(), key=lambda t: t.name):
        columns = [c for c in table.columns if isinstance(c.type, EncryptedText)]
        if columns:
            found.append((table, columns))
    return found


def rotate_keys(
    db: Database, box: SecretBox, *, batch_size: int = BATCH_SIZE, after_batch: BatchDone | None = None
) -> list[TableRotation]:
    """Re-encrypt every stored secret under `box`'s newest key; one count per table."""
    return [
        _rotate_table(db, box, table, columns, batch_size, after_batch)
        for table, columns in encrypted_tables()
    ]


def _rotate_table(
    db: Database,
    box: SecretBox,
    table: Table,
    columns: list[Column],
    batch_size: int,
    after_batch: BatchDone | None,
) -> TableRotation:
    (key,) = table.primary_key.columns  # every table has one integer id
    # Read and compare the stored ciphertext itself, not the plain text EncryptedText would give.
    stored = [type_coerce(c, Text) for c in columns]
    counts = TableRotation(table.name)
    last = None
    while True:
        with db.session() as session:
            query = select(key, *stored).order_by(key).limit(batch_size)
            if last is not None:
                query = query.where(key > last)
            rows = session.execute(query).all()
            for row in rows:
                _rotate_row(session, box, table, key, columns, row, counts)
        if not rows:
            return counts
        last = rows[-1][0]
        if after_batch is not None:
            after_batch(counts)


def _rotate_row(
    session: Session,
    box: SecretBox,
    table: Table,
    key: Column,
    columns: list[Column],
    row: Row,
    counts: TableRotation,
) -> None:
    """Write the row's values re-encrypted, where each is still the ciphertext that was read."""
    changes = {}
    for column, old in zip(columns, row[1:], strict=True):
        new = _rotated(box, old, counts)
        if new is not None:
            changes[column] = (old, new)
    if not changes:
        return
    unchanged = [type_coerce(column, Text) == old for column, (old, _) in changes.items()]
    statement = (
        update(table)
        .where(key == row[0], *unchanged)
        .values({column.name: type_coerce(new, Text) for column, (_, new) in changes.items()})
    )
    session.execute(statement)


def _rotated(box: SecretBox, token: str | None, counts: TableRotation) -> str | None:
    """The value re-encrypted under the newest key, or None when there is nothing to write."""
    if token is None:
        return None
    if box.under_newest_key(token):
        counts.current += 1
        return None
    try:
        new = box.rotate(token)
    except ValueError:
        counts.unreadable += 1
        return None
    counts.rotated += 1
    return new
