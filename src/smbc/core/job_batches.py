"""Many queue messages for one task in one write: one SQLite transaction or one Redis LPUSH for a
whole group commit, instead of one per delivery. Each message is the same as `task(arg)` would send,
so a worker cannot tell the difference.

`QueuedMarks` lets a sender skip a message when one for the same key is already queued and has not
started: the mark is set before the message is sent and removed by the task when it starts, before
it reads the database, so whatever was written before a skipped send is seen by the queued task.
With Redis, `QueuedMarks.send` sets the marks and pushes the messages of the keys it marked in one
script: one round trip, and none of the messages when every mark was already set."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from huey.api import TaskWrapper
from huey.storage import RedisStorage, SqliteStorage
from redis.commands.core import Script

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


# KEYS[1]: the queue, KEYS[2..]: the marks; ARGV[1]: the marks' lifetime in ms, ARGV[2..]: one message
# per mark. Marks each key not marked yet and pushes its message (in order, as one LPUSH would);
# returns the positions (from 1) of the keys sent.
_MARK_AND_PUSH = """
local sent = {}
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'PX', ARGV[1]) then
    redis.call('LPUSH', KEYS[1], ARGV[i])
    sent[#sent + 1] = i - 1
  end
end
return sent
"""


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
        self._script: tuple[RedisStorage, Script] | None = None  # _MARK_AND_PUSH on that storage

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

    def send(self, task: TaskWrapper, keys: Sequence[int]) -> list[int]:
        """`task(key)` for each key not marked yet, now marked (`claim` then `enqueue_each`); returns
        those keys. Raises if the queue fails, leaving none of the keys marked by this call. With Redis
        the marks and the messages are one script: one round trip, atomic."""
        storage = huey.storage
        if not keys:
            return []
        if isinstance(storage, RedisStorage) and not huey.immediate:
            messages = [huey.serialize_task(task.s(key)) for key in keys]
            marks = [self._redis_key(storage, key) for key in keys]
            lifetime = int(self.seconds * 1000)
            sent = self._mark_and_push(storage)(keys=[storage.queue_key, *marks], args=[lifetime, *messages])
            return [keys[i - 1] for i in sent]
        wanted = self.claim(keys)
        try:
            enqueue_each(task, wanted)
        except BaseException:
            self.clear(wanted)  # nothing queued: the next send tries again
            raise
        return wanted

    def _mark_and_push(self, storage: RedisStorage) -> Script:
        """The script, registered once per queue storage (run by its hash, loaded when Redis lacks it)."""
        script = self._script
        if script is None or script[0] is not storage:
            script = self._script = (storage, storage.conn.register_script(_MARK_AND_PUSH))
        return script[1]

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
