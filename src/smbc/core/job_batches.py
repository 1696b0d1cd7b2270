"""Many queue messages for one task in one write: one SQLite transaction or one Redis LPUSH for a
whole group commit, instead of one per delivery. Each message is the same as `task(arg)` would send,
so a worker cannot tell the difference.

`QueuedMarks` lets a sender skip a message when one for the same key is already queued and has not
started: the mark is set before the message is sent and removed by the task when it starts, before
it reads the database, so whatever was written before a skipped send is seen by the queued task.
With Redis, `QueuedMarks.send` sets the marks and pushes the messages of the keys it marked in one
script: one round trip, and none of the messages when every mark was already set. A send (or claim)
that finds a key marked notes that something arrived for it, atomically with the check: `take`
clears the mark and says whether anything arrived while it was set (the holder of the mark looks
once more only then)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from huey.api import TaskWrapper
from huey.storage import RedisStorage, SqliteStorage
from redis import Redis
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


# A key's "arrived" note outlives its mark by far: a note lost with an expired mark would strand the row
# it was for until the sweep (a holder may work past the mark's lifetime); a stale note costs one look.
ARRIVED_SECONDS = 3600.0

# KEYS[1]: the queue, KEYS[2..]: the marks; ARGV[1]: the marks' lifetime in ms, ARGV[2]: the notes'
# lifetime in ms, ARGV[3..]: one message per mark. Marks each key not marked yet and pushes its
# message (in order, as one LPUSH would), notes an arrival on each key already marked; returns the
# positions (from 1) of the keys sent.
_MARK_AND_PUSH = """
local sent = {}
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'PX', ARGV[1]) then
    redis.call('LPUSH', KEYS[1], ARGV[i + 1])
    sent[#sent + 1] = i - 1
  else
    redis.call('SET', KEYS[i] .. ':arrived', '1', 'PX', ARGV[2])
  end
end
return sent
"""

# KEYS: the marks; ARGV[1]: the marks' lifetime in ms, ARGV[2]: the notes' lifetime in ms. Marks each
# key not marked yet, notes an arrival on each key already marked; returns the positions of the first.
_MARK_OR_NOTE = """
local fresh = {}
for i = 1, #KEYS do
  if redis.call('SET', KEYS[i], '1', 'NX', 'PX', ARGV[1]) then
    fresh[#fresh + 1] = i
  else
    redis.call('SET', KEYS[i] .. ':arrived', '1', 'PX', ARGV[2])
  end
end
return fresh
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
        self._arrived: set[int] = set()  # local keys something arrived for while marked
        self._local_storage: object = None  # the queue the local marks are about
        self._lock = threading.Lock()
        self._scripts: dict[str, tuple[RedisStorage, Script]] = {}  # registered on that storage

    def _redis_key(self, storage: RedisStorage, key: int) -> str:
        return f"{storage.queue_key}:{self.name}:{key}"

    def _lifetimes(self) -> list[int]:
        return [int(self.seconds * 1000), int(ARRIVED_SECONDS * 1000)]

    def _marks_locally(self) -> bool:
        try:
            return get_runtime().settings.workers == "inline"
        except RuntimeError:  # no runtime: a script or test driving the queue by hand
            return False

    def claim(self, keys: Sequence[int]) -> list[int]:
        """The keys not marked yet, now marked: a message is to be sent for each (and `clear`ed if
        sending fails). Keys already marked have a queued message that has not started (or a holder
        that will `take` the mark): an arrival is noted on them."""
        storage = huey.storage
        if huey.immediate:
            return list(keys)
        if isinstance(storage, RedisStorage):
            if not keys:
                return []
            marks = [self._redis_key(storage, key) for key in keys]
            fresh = self._script(storage, _MARK_OR_NOTE)(keys=marks, args=self._lifetimes())
            return [keys[i - 1] for i in fresh]
        if not self._marks_locally():
            return list(keys)
        now = time.monotonic()
        fresh = []
        with self._lock:
            if self._local_storage is not storage:  # another queue (a new runtime): no message of ours
                self._local_storage = storage
                self._local.clear()
                self._arrived.clear()
            for key in keys:
                if self._local.get(key, 0.0) <= now:
                    self._local[key] = now + self.seconds
                    fresh.append(key)
                else:
                    self._arrived.add(key)
        return fresh

    def send(self, task: TaskWrapper, keys: Sequence[int], held: Redis | None = None) -> list[int]:
        """`task(key)` for each key not marked yet, now marked (`claim` then `enqueue_each`); returns
        those keys. Raises if the queue fails, leaving none of the keys marked by this call. With Redis
        the marks and the messages are one script: one round trip, atomic (on `held`, a
        `held_queue_connection` of this queue, if given)."""
        storage = huey.storage
        if not keys:
            return []
        if isinstance(storage, RedisStorage) and not huey.immediate:
            messages = [huey.serialize_task(task.s(key)) for key in keys]
            marks = [self._redis_key(storage, key) for key in keys]
            on = held if held is not None and held.connection_pool is storage.conn.connection_pool else None
            sent = self._script(storage, _MARK_AND_PUSH)(
                keys=[storage.queue_key, *marks], args=[*self._lifetimes(), *messages], client=on
            )
            return [keys[i - 1] for i in sent]
        wanted = self.claim(keys)
        try:
            enqueue_each(task, wanted)
        except BaseException:
            self.clear(wanted)  # nothing queued: the next send tries again
            raise
        return wanted

    def _script(self, storage: RedisStorage, source: str) -> Script:
        """A script, registered once per queue storage (run by its hash, loaded when Redis lacks it)."""
        script = self._scripts.get(source)
        if script is None or script[0] is not storage:
            script = self._scripts[source] = (storage, storage.conn.register_script(source))
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

    def take(self, key: int) -> bool:
        """Clear the key's mark (as `clear`) and its arrival note, at once: True when a send or claim
        found the key marked since the last `take` or `forget_arrivals` (its message was not sent).
        Where nothing is marked every message is sent, so nothing is noted: False."""
        storage = huey.storage
        if isinstance(storage, RedisStorage) and not huey.immediate:
            mark = self._redis_key(storage, key)
            pipe = storage.conn.pipeline(transaction=True)  # MULTI: no send between the two
            pipe.delete(f"{mark}:arrived")
            pipe.delete(mark)
            noted, _ = pipe.execute()
            return bool(noted)
        with self._lock:
            self._local.pop(key, None)
            if key in self._arrived:
                self._arrived.discard(key)
                return True
            return False

    def forget_arrivals(self, key: int) -> None:
        """Drop the key's arrival note: its holder is about to look at everything recorded so far."""
        storage = huey.storage
        if isinstance(storage, RedisStorage) and not huey.immediate:
            storage.conn.delete(f"{self._redis_key(storage, key)}:arrived")
            return
        with self._lock:
            self._arrived.discard(key)


def held_queue_connection() -> Redis | None:
    """A client of the queue's Redis that keeps one connection of its pool until `close()`d, or None
    (another queue, or Redis unreachable): for a thread that sends batch after batch, each send then
    skips the pool's checkout and the readiness poll of the connection that comes with it."""
    storage = huey.storage
    if not isinstance(storage, RedisStorage) or huey.immediate:
        return None
    try:
        return Redis(connection_pool=storage.conn.connection_pool, single_connection_client=True)
    except Exception:  # the sends go through the pool, and meet the failure there
        return None
