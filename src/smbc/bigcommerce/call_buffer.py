"""Call records kept in memory during remote work and written later with the work's state."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import insert

from smbc.core.remote_calls import RemoteCall

# One Core INSERT, built once: the records need no ORM objects, and a batch is one executemany.
_INSERT_CALLS = insert(RemoteCall.__table__)


class CallBuffer:
    """Collects attempt records during remote work; `flush(session)` writes them as RemoteCall rows in
    the same short transaction as the work's state (no database lock is held during network calls).
    Thread-safe: an export's page reader records into the same buffer as its sender."""

    def __init__(self, context: str = "") -> None:
        self.context = context
        # Set while one piece of a batch's work runs, so its calls are recorded as that work's (the
        # clients were built once for the batch, with the batch's context).
        self.attribute_to: str | None = None
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, fields: dict[str, Any]) -> None:
        with self._lock:
            if self.attribute_to is not None:
                fields = {**fields, "context": self.attribute_to}
            self.calls.append(fields)

    def flush(self, session: Any) -> list[dict[str, Any]]:
        """Write and forget the records; returns them, for `put_back` if the transaction fails."""
        with self._lock:
            taken, self.calls = self.calls, []
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for fields in taken:  # an executemany needs the same columns in every row
            by_columns.setdefault(tuple(sorted(fields)), []).append(fields)
        for rows in by_columns.values():
            session.execute(_INSERT_CALLS, rows)
        return taken

    def put_back(self, taken: list[dict[str, Any]]) -> None:
        with self._lock:
            self.calls = taken + self.calls
