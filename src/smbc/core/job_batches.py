"""Many queue messages for one task in one write: one SQLite transaction or one Redis LPUSH for a
whole group commit, instead of one per delivery. Each message is the same as `task(arg)` would send,
so a worker cannot tell the difference.

`QueuedMarks` lets a sender skip a message when one for the same key is already queued and has not
started: the mark is set before the message is sent and removed by the task when it starts, before
it reads the database, so whatever was written before a skipped send is seen by the queued task."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from huey.api import TaskWrapper
from huey.storage import RedisStorage, SqliteStorage

from smbc.core.jobs import huey
from smbc.core.runtime import get_runtime


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


class QueuedMarks:
    """Marks of "a message for this key is queued and has not started", kept where every consumer of
    the queue can clear them.

    With Redis the mark is a key beside the queue (every worker process clears it); with the embedded
    queue and inline workers it lives in this process, whose threads are the only workers. Anywhere
    else (external workers on the embedded queue, tests' immediate mode) nothing is marked and every
    message is sent. A mark lapses after `seconds` whatever happens: a message lost with its worker
    (killed between taking it and starting) holds back others for that long at most."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name = name
        self.seconds = seconds
        self._local: dict[int, float] = {}
        self._local_storage: object = None  # the queue the local marks are about
        self._lock = threading.Lock()

    def _redis_key(self, storage: RedisStorage, key: int) -> str:
        return f"{storage.queue_key}:{self.name}:{key}"

    def _marks_locally(self) -> bool:
        try:
            return get_runtime().settings.workers == "inline"
        except RuntimeError:  # no runtime: a script or test driving the queue by hand
            return False

    def claim(self, keys: Sequence[int]) -> list[int]:
        """The keys not marked yet, now marked: a message is to be sent for each (and `clear`ed if
        sending fails). Keys already marked have a queued message that has not started."""
        storage = huey.storage
        if huey.immediate:
            return list(keys)
        if isinstance(storage, RedisStorage):
            pipe = storage.conn.pipeline(transaction=False)
            for key in keys:
                pipe.set(self._redis_key(storage, key), b"1", nx=True, px=int(self.seconds * 1000))
            return [key for key, fresh in zip(keys, pipe.execute(), strict=True) if fresh]
        if not self._marks_locally():
            return list(keys)
        now = time.monotonic()
        fresh = []
        with self._lock:
            if self._local_storage is not storage:  # another queue (a new runtime): no message of ours
                self._local_storage = storage
                self._local.clear()
            for key in keys:
                if self._local.get(key, 0.0) <= now:
                    self._local[key] = now + self.seconds
                    fresh.append(key)
        return fresh

    def clear(self, keys: Sequence[int]) -> None:
        """The message for each key started (or was never sent): the next send goes out."""
        storage = huey.storage
        if not keys:
            return
        if isinstance(storage, RedisStorage):
            storage.conn.delete(*(self._redis_key(storage, key) for key in keys))
            return
        with self._lock:
            for key in keys:
                self._local.pop(key, None)
