"""Answers that reach the limiter in another order than BigCommerce counted their requests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Protocol

import pytest

from smbc.bigcommerce.limiter import LocalLimiter, QuotaUsedUp, RedisLimiter, StoreLimiter
from smbc.core.clock import FakeClock

STORE = "abc123"


class _Processes(Protocol):
    def __call__(self, count: int) -> list[StoreLimiter]: ...


def _answer(left: int, reset_ms: int) -> dict[str, str]:
    return {
        "X-Rate-Limit-Requests-Left": str(left),
        "X-Rate-Limit-Requests-Quota": "15",
        "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
        "X-Rate-Limit-Time-Window-Ms": "5000",
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["local", "redis"])
def processes(
    request: pytest.FixtureRequest, clock: FakeClock
) -> Iterator[Callable[[int], list[StoreLimiter]]]:
    """Limiters standing for worker processes of one deployment: threads of one process share a
    LocalLimiter, processes share Redis."""
    if request.param == "local":
        shared = LocalLimiter(clock=clock)
        yield lambda count: [shared] * count
        return
    redis_url = request.getfixturevalue("redis_url")
    prefix = f"test:bc:{uuid.uuid4().hex[:8]}"
    made: list[RedisLimiter] = []

    def make(count: int) -> list[StoreLimiter]:
        made.extend(RedisLimiter(redis_url, clock=clock, prefix=prefix) for _ in range(count))
        return list(made[-count:])

    yield make
    for limiter in made:
        limiter.close()


def _sent_before_the_reset(limiter: StoreLimiter, clock: FakeClock, most: int) -> int:
    start = clock.time()
    sent = 0
    for _ in range(most):
        with limiter.slot(STORE, "realtime"):
            pass
        if clock.time() != start:
            break
        sent += 1
    return sent


def test_a_late_answer_does_not_give_back_requests_counted_after_it(
    processes: _Processes, clock: FakeClock
) -> None:
    # Three requests out with 5 left. BigCommerce counts a first (4 left), then b (3), then c (2);
    # b's and c's answers arrive first, a's last (a slow thread). Only 2 are left: a's answer must
    # not raise the count back to 4 (the scaling curve's store went over its quota this way).
    a, b, c = processes(3)
    a.observe(STORE, _answer(left=5, reset_ms=4000))
    with ExitStack() as a_out:
        a_out.enter_context(a.slot(STORE, "realtime"))
        with ExitStack() as b_out:
            b_out.enter_context(b.slot(STORE, "realtime"))
            with c.slot(STORE, "realtime"):
                b.observe(STORE, _answer(left=3, reset_ms=3990))
                b_out.close()
                c.observe(STORE, _answer(left=2, reset_ms=3980))
        a.observe(STORE, _answer(left=4, reset_ms=3970))
    assert _sent_before_the_reset(a, clock, most=6) <= 2


def test_an_answer_from_the_next_window_is_taken_as_it_is(processes: _Processes, clock: FakeClock) -> None:
    # Nothing was left in the window; BigCommerce's window ended before the limiter's estimate, and a
    # request already counted in the next one says 14 are left there: no need to wait.
    (limiter,) = processes(1)
    limiter.observe(STORE, _answer(left=0, reset_ms=4000))
    clock.advance(3.5)
    limiter.observe(STORE, _answer(left=14, reset_ms=4990))
    assert _sent_before_the_reset(limiter, clock, most=5) == 5


def test_a_caller_that_may_not_hold_its_thread_is_told_how_long_the_quota_is_used_up(
    processes: _Processes, clock: FakeClock
) -> None:
    # A real-time drain gives its rows back instead of sleeping 8 s in a worker thread other stores need.
    (limiter,) = processes(1)
    limiter.observe(STORE, _answer(left=0, reset_ms=8000))
    assert limiter.quota_wait(STORE, "realtime") == pytest.approx(8.0, abs=0.01)
    start = clock.time()
    with pytest.raises(QuotaUsedUp) as raised, limiter.slot(STORE, "realtime", max_wait=1.0):
        pass
    assert raised.value.wait_s == pytest.approx(8.0, abs=0.01)
    assert clock.time() == start  # nothing waited, nothing sent
    clock.advance(7.5)  # half a second left: short enough to wait for in place
    with limiter.slot(STORE, "realtime", max_wait=1.0):
        pass
    assert clock.time() - start == pytest.approx(8.0, abs=0.01)
    assert limiter.quota_wait(STORE, "realtime") == 0.0


def test_a_reset_too_far_ahead_to_be_a_window_is_forgotten(processes: _Processes, clock: FakeClock) -> None:
    # BigCommerce's windows last 30 s: a reset an hour ahead is stale state (a clock that jumped), and
    # waiting for it held a worker for ever.
    (limiter,) = processes(1)
    limiter.observe(STORE, _answer(left=0, reset_ms=3_600_000))
    assert limiter.quota_wait(STORE, "realtime") == 0.0
    assert _sent_before_the_reset(limiter, clock, most=3) == 3


def test_a_reset_learnt_under_a_longer_window_gives_way_to_the_current_one(
    processes: _Processes, clock: FakeClock
) -> None:
    # Learnt under a 30 s window (the store's quota since changed, or another app's answer): once the
    # 5 s window's requests are used up, the wait is for its reset, not for the old one 25 s away (the
    # scaling curve's stores stood still for 22 s this way, every worker idle).
    (limiter,) = processes(1)
    limiter.observe(STORE, {**_answer(left=400, reset_ms=25_000), "X-Rate-Limit-Time-Window-Ms": "30000"})
    limiter.observe(STORE, _answer(left=0, reset_ms=4000))
    assert limiter.quota_wait(STORE, "realtime") == pytest.approx(4.0, abs=0.01)


def test_an_answer_written_late_does_not_undo_the_next_windows_count(
    processes: _Processes, clock: FakeClock
) -> None:
    # A's answer, from the end of a window, is written when A's slot is released, 3 s later on a loaded
    # machine; meanwhile B's answer from the next window says 1 is left there. A's late write must not
    # pass for a reset learnt under a longer window and replace B's: the limiter would then think the
    # window over and send 3 (the scaling curve's test once saw 11 requests in a window of 10).
    a, b = processes(2)
    a.observe(STORE, _answer(left=9, reset_ms=4000))
    with a.slot(STORE, "realtime"):
        clock.advance(3.5)
        a.observe(STORE, _answer(left=2, reset_ms=500))  # before the window's end, seen by A
        clock.advance(3.0)  # A's thread is descheduled; the window ends, the next one begins
        b.observe(STORE, _answer(left=1, reset_ms=4900))
    assert _sent_before_the_reset(b, clock, most=3) <= 1
