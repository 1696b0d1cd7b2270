"""The engine's outcome table and retry schedule: what a failed remote call or an unexpected error
makes of a queued row, and when it is tried again. `smbc.engine.queue` applies them."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from smbc.core.remote_calls import CallPostponed, Outcome, RemoteCallError
from smbc.engine.context import Result, RowStatus

# A row failing with an error the outcome table does not know (a bug, an answer nobody foresaw) is
# failed after this many attempts in all, with the error: such an error rarely passes by itself.
UNEXPECTED_ERROR_ATTEMPTS = 5
# The database's own failures (server restarting, connection cut, pool exhausted, deadlock): transient.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeout)


# -- outcome -> what happens to the row ----------------------------------------------------------


class Action(StrEnum):
    DONE = "done"  # nothing more to do
    RETRY = "retry"  # pending again, after a backoff
    WAIT = "wait"  # the store is paused (credentials refused); the row waits for resume_store
    FAIL = "fail"  # refused: never retried (a 4xx other than 401/403/404/409/429 lands here)
    SKIP = "skip"  # nothing to do (a 404: the resource was deleted since)


OUTCOME_ACTIONS: Mapping[Outcome, Action] = {
    Outcome.SUCCESS: Action.DONE,
    Outcome.RETRY: Action.RETRY,
    Outcome.RATE_LIMITED: Action.RETRY,
    Outcome.CREDENTIALS: Action.WAIT,
    Outcome.INVALID: Action.FAIL,
    Outcome.IGNORED: Action.SKIP,
}

PAUSED_FOR_CREDENTIALS = "sync paused: credentials"


def result_for(exc: RemoteCallError) -> Result:
    """What a failed remote call makes of the row, by `OUTCOME_ACTIONS`."""
    if isinstance(exc, CallPostponed) and exc.retry_after is not None:
        return Result.postpone(exc.message, exc.retry_after)
    action = OUTCOME_ACTIONS[exc.outcome]
    if action is Action.RETRY:
        return Result.retry(exc.message, exc.retry_after)
    if action is Action.WAIT:
        return Result.waiting(PAUSED_FOR_CREDENTIALS, exc.message)
    if action is Action.SKIP:
        return Result.skipped(exc.message[:255])
    if action is Action.DONE:
        return Result.done(exc.message[:255])
    return Result.failed("refused", exc.message)


def result_for_unexpected(exc: BaseException) -> Result:
    """An exception that is not a `RemoteCallError`: retried with backoff, but the row is failed once
    it has been tried `UNEXPECTED_ERROR_ATTEMPTS` times (`finish`), never retried for ever. The
    database failing passes by itself (a restart, a cut connection): retried as an outage is."""
    if isinstance(exc, DATABASE_UNAVAILABLE):
        return Result.retry(f"database unavailable: {type(exc).__name__}: {exc}")
    return Result(RowStatus.PENDING, error=describe_unexpected(exc), unexpected=True)


def describe_unexpected(exc: BaseException) -> str:
    return f"internal error: {type(exc).__name__}: {exc}"


def gave_up_unexpected(error: str, attempts: int) -> str:
    """The reason written on a row (or an export) that stopped on an unexpected error."""
    return f"stopped after {attempts} attempts: {error}"


# -- retry schedule ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter. Defaults: 30 s, 1 min, 2 min, ... capped at 2 h; a row still
    failing 24 h after it was received fails for good."""

    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=2)
    give_up_after: timedelta = timedelta(hours=24)

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """Half the ceiling plus a random half; the ceiling doubles per attempt up to `cap`."""
        ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** max(attempts - 1, 0))
        return timedelta(seconds=ceiling / 2 + (rng or random).uniform(0, ceiling / 2))

    def wait(
        self,
        attempts: int,
        retry_after: float | None = None,
        *,
        exact: bool = False,
        rng: random.Random | None = None,
    ) -> timedelta:
        """The wait before the next attempt: the backoff, or longer when the service asked for it
        (`retry_after` seconds); `exact` waits `retry_after` and no more (a short wait for a peer)."""
        if retry_after and exact:
            return timedelta(seconds=retry_after)
        backoff = self.delay(attempts, rng)
        return max(backoff, timedelta(seconds=retry_after)) if retry_after else backoff

    def gives_up(self, since: datetime, now: datetime) -> bool:
        return now - since >= self.give_up_after


DEFAULT_RETRY = RetryPolicy()
