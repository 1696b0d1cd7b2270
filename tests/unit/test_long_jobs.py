"""What a failed step makes of a long job (an export, a catalog sync): retry later from its cursor,
or fail with a reason the merchant can read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.engine.long_jobs import LongJobColumns, after_error
from smbc.engine.queue import UNEXPECTED_ERROR_ATTEMPTS, RetryPolicy

NOW = datetime(2026, 5, 14, 9, 0, tzinfo=UTC)
POLICY = RetryPolicy(base=timedelta(seconds=5), cap=timedelta(minutes=10), give_up_after=timedelta(hours=24))


class Row(LongJobColumns):
    """A job's row outside the database: the mixin's attributes, set by hand."""

    def __init__(self) -> None:
        self.attempts = 0
        self.failing_since: datetime | None = None
        self.next_attempt_at: datetime | None = None
        self.lease_owner: str | None = "worker-1"
        self.last_error = ""


def _credentials(exc: RemoteCallError) -> str:
    return f"log in again ({exc.message})"


def _after(row: Row, exc: RemoteCallError, *, unexpected: bool = False) -> str | float:
    return after_error(row, exc, POLICY, NOW, credentials_message=_credentials, unexpected=unexpected)


def test_a_retryable_failure_releases_the_job_until_its_retry_time() -> None:
    row = Row()
    wait = _after(row, RemoteCallError(Outcome.RETRY, "timeout"))
    assert isinstance(wait, float) and 0 < wait <= 5
    assert row.next_attempt_at == NOW + timedelta(seconds=wait)
    assert row.lease_owner is None  # another worker may take it when it is due
    assert (row.attempts, row.failing_since, row.last_error) == (1, NOW, "timeout")


def test_refused_credentials_fail_the_job_with_what_to_do() -> None:
    row = Row()
    verdict = _after(row, RemoteCallError(Outcome.CREDENTIALS, "401"))
    assert verdict == "log in again (401)"


def test_a_refused_request_fails_the_job_with_the_refusal() -> None:
    verdict = _after(Row(), RemoteCallError(Outcome.INVALID, "bad field"))
    assert verdict == "bad field"


def test_an_unexpected_error_stops_the_job_after_a_few_attempts() -> None:
    row = Row()
    error = RemoteCallError(Outcome.RETRY, "internal error: KeyError: 'id'")
    verdicts = [
        after_error(row, error, POLICY, NOW, credentials_message=_credentials, unexpected=True)
        for _ in range(UNEXPECTED_ERROR_ATTEMPTS)
    ]
    assert all(isinstance(v, float) for v in verdicts[:-1])
    assert (
        verdicts[-1] == f"stopped after {UNEXPECTED_ERROR_ATTEMPTS} attempts: internal error: KeyError: 'id'"
    )


def test_a_job_failing_for_a_day_gives_up() -> None:
    row = Row()
    row.failing_since = NOW - timedelta(hours=24)
    verdict = _after(row, RemoteCallError(Outcome.RETRY, "503"))
    assert verdict == "Gave up after 24 h of failures: 503"
