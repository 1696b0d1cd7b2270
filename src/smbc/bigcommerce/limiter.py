"""Per-store limits on calls to BigCommerce, shared by every thread (and process, with Redis).

Two rules: at most 3 requests in flight per store, and stay within the store's quota
(150 or 450 requests per 30 s, shared with every other app on the store). The quota is learnt from
`X-Rate-Limit-Requests-Left` / `-Quota` / `-Time-Reset-Ms` on each answer; a caller waits for the
window to reset once the requests left reach its reserve. Export work keeps a reserve free for
real-time work (it waits when 30 % of the quota is left), real-time work waits only at 0.

A caller that must not hold its thread for long (a real-time drain: other stores' work waits for the
thread) passes `max_wait`: a longer wait for the quota raises `QuotaUsedUp` instead, and the caller
gives its work back until the window resets.

Choice of backend: with `SMBC_QUEUE_URL=redis://…` several worker processes share Redis counters
(`RedisLimiter`); otherwise all workers are threads of one process and `LocalLimiter` is enough.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from smbc.core.clock import Clock, UsesClock
from smbc.core.runtime import get_runtime

MAX_IN_FLIGHT = 3
EXPORT_RESERVE = 0.3  # share of the quota export work leaves to real time
RATE_LIMITED_DEFAULT_WAIT_S = 5.0
SLOT_LEASE_MS = 60_000  # a crashed process frees its Redis slots after this
# A reset this far ahead is no BigCommerce window (they last 30 s): the state is stale (the clock
# jumped, as a test's fake clock does), so it is forgotten rather than waited for.
MAX_RESET_AHEAD_S = 300.0


class QuotaUsedUp(Exception):
    """The store's quota is used up for `wait_s` more seconds, longer than the caller waits."""

    def __init__(self, store_hash: str, wait_s: float) -> None:
        super().__init__(f"the API quota of store {store_hash} is used up for {wait_s:.1f} s more")
        self.wait_s = wait_s


class StoreLimiter(Protocol):
    def slot(
        self, store_hash: str, priority: str, *, max_wait: float | None = None
    ) -> AbstractContextManager[None]: ...

    def quota_wait(self, store_hash: str, priority: str) -> float:
        """Seconds before a caller of this priority may send, as far as the quota is known."""
        ...

    def observe(self, store_hash: str, headers: Mapping[str, str], *, rate_limited: bool = False) -> None: ...


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    # Header names are case-insensitive; httpx.Headers already is, a plain dict is not.
    value = next((v for k, v in headers.items() if k.lower() == name), None)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def reserve_for(priority: str, quota: int | None) -> int:
    """Requests that must stay left before a caller of this priority may send one more."""
    if priority == "export" and quota:
        return max(1, math.ceil(quota * EXPORT_RESERVE))
    return 0


def merge_answer(
    known_left: int | None, known_reset_at: float, left: int, reset_at: float, *, window: float, now: float
) -> tuple[int, float]:
    """The requests left and the reset time after an answer, given what is known. Answers of one
    window arrive out of order (a slow thread's answer was counted by BigCommerce before answers
    already seen): within the known window an answer only ever lowers the count. An answer whose
    reset is over half a window after the known one is from the next window and is taken as it is;
    a known reset over a window and a half ahead cannot be this window's (it was learnt under a longer
    window, e.g. before the store's quota changed) and is replaced too."""
    if known_left is None or now >= known_reset_at or known_reset_at - now > MAX_RESET_AHEAD_S:
        return left, reset_at
    if window > 0 and (reset_at > known_reset_at + window / 2 or known_reset_at - now > window * 1.5):
        return left, reset_at
    return min(known_left, left), max(known_reset_at, reset_at)


@dataclass
class _StoreState:
    in_flight: int = 0
    left: int | None = None
    quota: int | None = None
    reset_at: float = 0.0  # clock.monotonic() when the quota window resets


class LocalLimiter(UsesClock):
    """Threads of one process: a condition variable per process, state per store."""

    def __init__(self, max_in_flight: int = MAX_IN_FLIGHT, clock: Clock | None = None) -> None:
        self.max_in_flight = max_in_flight
        self._clock = clock
        self._cond = threading.Condition()
        self._stores: dict[str, _StoreState] = {}
        self.peak_in_flight: dict[str, int] = {}

    def _quota_wait(self, state: _StoreState, priority: str) -> float:
        if state.left is None:
            return 0.0
        now = self.clock.monotonic()
        if now >= state.reset_at or state.reset_at - now > MAX_RESET_AHEAD_S:
            state.left = None  # a new window: full quota until the next answer says otherwise
            return 0.0
        if state.left > reserve_for(priority, state.quota):
            return 0.0
        return state.reset_at - now

    def quota_wait(self, store_hash: str, priority: str = "realtime") -> float:
        with self._cond:
            return self._quota_wait(self._stores.setdefault(store_hash, _StoreState()), priority)

    @contextmanager
    def slot(
        self, store_hash: str, priority: str = "realtime", *, max_wait: float | None = None
    ) -> Iterator[None]:
        self._acquire(store_hash, priority, max_wait)
        try:
            yield
        finally:
            with self._cond:
                self._stores[store_hash].in_flight -= 1
                self._cond.notify_all()

    def _acquire(self, store_hash: str, priority: str, max_wait: float | None) -> None:
        while True:
            with self._cond:
                state = self._stores.setdefault(store_hash, _StoreState())
                wait = self._quota_wait(state, priority)
                if wait <= 0:
                    if state.in_flight < self.max_in_flight:
                        state.in_flight += 1
                        peak = self.peak_in_flight.get(store_hash, 0)
                        self.peak_in_flight[store_hash] = max(peak, state.in_flight)
                        if state.left is not None:
                            state.left -= 1  # other threads see the request before its answer
                        return
                    self._cond.wait(timeout=1.0)  # another thread's request finishing frees a slot
                    continue
            if max_wait is not None and wait > max_wait:
                raise QuotaUsedUp(store_hash, wait)
            self.clock.sleep(wait)

    def observe(self, store_hash: str, headers: Mapping[str, str], *, rate_limited: bool = False) -> None:
        left = _int_header(headers, "x-rate-limit-requests-left")
        quota = _int_header(headers, "x-rate-limit-requests-quota")
        reset_ms = _int_header(headers, "x-rate-limit-time-reset-ms")
        window_s = (_int_header(headers, "x-rate-limit-time-window-ms") or 0) / 1000.0
        with self._cond:
            state = self._stores.setdefault(store_hash, _StoreState())
            now = self.clock.monotonic()
            answer: tuple[int, float] | None = None
            if rate_limited:
                wait = reset_ms / 1000.0 if reset_ms is not None else RATE_LIMITED_DEFAULT_WAIT_S
                answer = 0, now + wait
            elif left is not None:
                # The answer's count predates the other requests still in flight: they will use it too.
                answer = max(0, left - max(0, state.in_flight - 1)), now + (reset_ms or 0) / 1000.0
            if answer is not None:
                state.left, state.reset_at = merge_answer(
                    state.left, state.reset_at, *answer, window=window_s, now=now
                )
            if quota is not None:
                state.quota = quota
            self._cond.notify_all()

    def state(self, store_hash: str) -> _StoreState:
        with self._cond:
            return self._stores.setdefault(store_hash, _StoreState())


_ACQUIRE = """
local slots, quota_key = KEYS[1], KEYS[2]
local now, max_in_flight, token, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local priority_reserve_share = tonumber(ARGV[5])
local wall = tonumber(ARGV[6])
local max_ahead = tonumber(ARGV[7])
local left = tonumber(redis.call('HGET', quota_key, 'left') or '')
local quota = tonumber(redis.call('HGET', quota_key, 'quota') or '')
local reset_at = tonumber(redis.call('HGET', quota_key, 'reset_at') or '0')
if left ~= nil and now < reset_at and reset_at - now <= max_ahead then
  local reserve = 0
  if priority_reserve_share > 0 and quota ~= nil then
    reserve = math.max(1, math.ceil(quota * priority_reserve_share))
  end
  if left <= reserve then return -(reset_at - now) end
elseif left ~= nil then
  redis.call('HDEL', quota_key, 'left')
  left = nil
end
redis.call('ZREMRANGEBYSCORE', slots, '-inf', wall)
if redis.call('ZCARD', slots) >= max_in_flight then return 0 end
redis.call('ZADD', slots, wall + lease, token)
redis.call('PEXPIRE', slots, lease)
if left ~= nil then redis.call('HSET', quota_key, 'left', left - 1) end
return 1
"""


# One script: counting the slots and writing what is left in two calls let another process take a
# request in between whose decrement the write then erased. The same rules as merge_answer.
_OBSERVE = """
local slots, quota_key = KEYS[1], KEYS[2]
local now, left, reset_at, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local max_ahead = tonumber(ARGV[7])
if ARGV[5] == '1' then
  left = math.max(0, left - math.max(0, redis.call('ZCARD', slots) - 1))
end
local known = tonumber(redis.call('HGET', quota_key, 'left') or '')
local known_reset = tonumber(redis.call('HGET', quota_key, 'reset_at') or '0')
local next_window = window > 0 and (reset_at > known_reset + window / 2 or known_reset - now > window * 1.5)
if known ~= nil and now < known_reset and known_reset - now <= max_ahead and not next_window then
  left, reset_at = math.min(known, left), math.max(known_reset, reset_at)
end
redis.call('HSET', quota_key, 'left', left, 'reset_at', reset_at)
if ARGV[6] ~= '' then redis.call('HSET', quota_key, 'quota', ARGV[6]) end
redis.call('PEXPIRE', quota_key, 120000)
return left
"""

# The release of a slot and the observation of its answer in one round trip: the slot is removed
# first, so the slots left are exactly the other requests in flight.
_RELEASE_AND_OBSERVE = """
redis.call('ZREM', KEYS[1], ARGV[8])
""" + _OBSERVE.replace("redis.call('ZCARD', slots) - 1", "redis.call('ZCARD', slots)")


@dataclass(eq=False)
class _HeldSlot:
    """A Redis slot a thread holds, and the answer observed under it (the observe script's args)."""

    store_hash: str
    token: str
    observed: list[Any] | None = None


class RedisLimiter(UsesClock):
    """Worker processes sharing one Redis: slots are leases in a sorted set, quota in a hash."""

    def __init__(
        self,
        url: str,
        max_in_flight: int = MAX_IN_FLIGHT,
        clock: Clock | None = None,
        prefix: str = "smbc:bc",
    ) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._no_script: type[Exception] = redis.exceptions.NoScriptError
        self._acquire_script = self._redis.register_script(_ACQUIRE)
        self._observe_script = self._redis.register_script(_OBSERVE)
        self._release_script = self._redis.register_script(_RELEASE_AND_OBSERVE)
        # Per thread, the slots it holds (innermost last): an answer observed while holding one is
        # written with the slot's release.
        self._held = threading.local()
        self.max_in_flight = max_in_flight
        self._clock = clock
        self.prefix = prefix

    def close(self) -> None:
        self._redis.close()

    def _evalsha(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """The script by its hash, loaded by `Script.__call__` only when Redis does not have it (its
        every call imported and type-checked clients: a third of a slot's CPU)."""
        try:
            return self._redis.evalsha(script.sha, len(keys), *keys, *args)
        except self._no_script:
            return script(keys=keys, args=args)

    def _keys(self, store_hash: str) -> tuple[str, str]:
        return f"{self.prefix}:{store_hash}:slots", f"{self.prefix}:{store_hash}:quota"

    def _now_ms(self) -> int:
        return int(self.clock.time() * 1000)

    def quota_wait(self, store_hash: str, priority: str = "realtime") -> float:
        _, quota_key = self._keys(store_hash)
        left, reset_at, quota = self._redis.hmget(quota_key, ["left", "reset_at", "quota"])
        if left is None:
            return 0.0
        wait = (float(reset_at or 0) - self._now_ms()) / 1000.0
        if wait <= 0 or wait > MAX_RESET_AHEAD_S:
            return 0.0
        reserve = reserve_for(priority, int(float(quota)) if quota is not None else None)
        return wait if int(float(left)) <= reserve else 0.0

    @contextmanager
    def slot(
        self, store_hash: str, priority: str = "realtime", *, max_wait: float | None = None
    ) -> Iterator[None]:
        slots, quota_key = self._keys(store_hash)
        token = uuid.uuid4().hex
        share = EXPORT_RESERVE if priority == "export" else 0.0
        while True:
            result = int(
                self._evalsha(
                    self._acquire_script,
                    keys=[slots, quota_key],
                    # Quota times follow the clock (tests move it); leases of crashed processes
                    # expire in real time, whatever a test does to the clock.
                    args=[
                        self._now_ms(),
                        self.max_in_flight,
                        token,
                        SLOT_LEASE_MS,
                        share,
                        int(time.time() * 1000),
                        int(MAX_RESET_AHEAD_S * 1000),
                    ],
                )
            )
            if result == 1:
                break
            if result < 0:
                if max_wait is not None and -result / 1000.0 > max_wait:
                    raise QuotaUsedUp(store_hash, -result / 1000.0)
                self.clock.sleep(-result / 1000.0)
            else:
                time.sleep(0.01)  # another process holds the slots: wait for one to be freed
        held = self._held_slots()
        slot = _HeldSlot(store_hash, token)
        held.append(slot)
        try:
            yield
        finally:
            held.remove(slot)
            if slot.observed is None:
                self._redis.zrem(slots, token)
            else:
                # Merged as of now, not as of the answer: a write delayed past the next window's first
                # answers must not look like a reset from a longer window and replace them.
                _, *answer = slot.observed
                args = [self._now_ms(), *answer, token]
                self._evalsha(self._release_script, keys=[slots, quota_key], args=args)

    def _held_slots(self) -> list[_HeldSlot]:
        held: list[_HeldSlot] | None = getattr(self._held, "slots", None)
        if held is None:
            held = self._held.slots = []
        return held

    def observe(self, store_hash: str, headers: Mapping[str, str], *, rate_limited: bool = False) -> None:
        _, quota_key = self._keys(store_hash)
        left = _int_header(headers, "x-rate-limit-requests-left")
        quota = _int_header(headers, "x-rate-limit-requests-quota")
        reset_ms = _int_header(headers, "x-rate-limit-time-reset-ms")
        window_ms = _int_header(headers, "x-rate-limit-time-window-ms") or 0
        now = self._now_ms()
        if rate_limited:
            wait_ms = reset_ms if reset_ms is not None else int(RATE_LIMITED_DEFAULT_WAIT_S * 1000)
            answer, count_others = (0, now + wait_ms), False
        elif left is not None:
            # The answer's count predates the other requests still in flight (this one holds a slot).
            answer, count_others = (left, now + (reset_ms or 0)), True
        else:
            if quota is not None:
                self._redis.hset(quota_key, "quota", quota)
                self._redis.pexpire(quota_key, 120_000)
            return
        args = [
            now,
            *answer,
            window_ms,
            int(count_others),
            "" if quota is None else quota,
            int(MAX_RESET_AHEAD_S * 1000),
        ]
        slot = next((s for s in reversed(self._held_slots()) if s.store_hash == store_hash), None)
        if slot is not None and slot.observed is None:
            slot.observed = args  # written when the slot is released, right after the answer
            return
        self._evalsha(self._observe_script, keys=list(self._keys(store_hash)), args=args)


_limiters: dict[str, StoreLimiter] = {}
_limiters_lock = threading.Lock()


def get_limiter() -> StoreLimiter:
    """The process-wide limiter for the configured queue: Redis-backed when the queue is Redis."""
    try:
        settings = get_runtime().settings
        queue_url, queue_name = settings.queue_url, settings.queue_name
    except RuntimeError:
        queue_url, queue_name = "local", ""
    distributed = queue_url.startswith(("redis://", "rediss://"))
    key = f"{queue_url}#{queue_name}" if distributed else "local"
    with _limiters_lock:
        if key not in _limiters:
            _limiters[key] = (
                RedisLimiter(queue_url, prefix=f"{queue_name}:bc") if distributed else LocalLimiter()
            )
        return _limiters[key]
