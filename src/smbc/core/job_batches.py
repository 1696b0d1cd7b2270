"""Many queue messages for one task in one write: one SQLite transaction or one Redis LPUSH for a
whole group commit, instead of one per delivery. Each message is the same as `task(arg)` would send,
so a worker cannot tell the difference."""

from __future__ import annotations

from collections.abc import Sequence

from huey.api import TaskWrapper
from huey.storage import RedisStorage, SqliteStorage

from smbc.core.jobs import huey


def enqueue_each(task: TaskWrapper, args: Sequence[int]) -> None:
    """`task(a)` for every `a`, written at once where the storage allows; raises if the queue fails."""
    if not args:
        return
    storage = huey.storage
    if huey.immediate or not isinstance(storage, SqliteStorage | RedisStorage):
        for arg in args:  # tests' immediate mode and the in-memory queue: one by one, as Huey does it
            task(arg)
        return
    messages = [huey.serialize_task(task.s(arg)) for arg in args]
    if isinstance(storage, RedisStorage):
        storage.conn.lpush(storage.queue_key, *messages)  # pushed in order, so taken in order
        return
    rows = [(storage.name, storage.to_blob(message), 0) for message in messages]
    with storage.db(commit=True) as cursor:
        cursor.executemany("insert into task (queue, data, priority) values (?, ?, ?)", rows)
