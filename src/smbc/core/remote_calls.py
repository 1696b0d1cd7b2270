"""What every call to a remote API shares: the outcome classes, the backoff policy and the
recorded row for each attempt (Saleor-style: the delivery and each of its attempts are rows).

Each client keeps ONE table that maps a response to an `Outcome`; the retry loop below is the only
place that decides what is retried ("do not retry 4xx" lives here, not in callers).
"""

from __future__ import annotations

import random
from dataclasses import KW_ONLY, dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, Session, mapped_column

from smbc.core.clock import utcnow
from smbc.db.base import Base
from smbc.db.types import UTCDateTime


class Outcome(StrEnum):
    SUCCESS = "success"
    RETRY = "retry"  # network error, timeout, 5xx: try again later
    RATE_LIMITED = "rate_limited"  # 429 or quota exhausted: wait as told, then retry
    CREDENTIALS = "credentials"  # auth broken: pause the store until the merchant fixes it
    INVALID = "invalid"  # the data was refused: fail now, never retry
    IGNORED = "ignored"  # nothing to do (e.g. 404 for a resource deleted since)

    @property
    def retryable(self) -> bool:
        return self in (Outcome.RETRY, Outcome.RATE_LIMITED)


class Service(StrEnum):
    """Which remote service a call went to (and so which credentials a CREDENTIALS outcome means)."""

    BIGCOMMERCE = "bigcommerce"
    SALESMANAGO = "salesmanago"


@dataclass(eq=False)  # eq=False: an exception is equal only to itself (and stays hashable)
class RemoteCallError(Exception):
    """A call that did not succeed; `outcome` says what to do about it, `service` whose answer it was
    (None for a failure of this app's own, such as an internal error)."""

    outcome: Outcome
    message: str
    _: KW_ONLY
    service: Service | None = None
    status: int | None = None
    retry_after: float | None = None
    # No connection was made, so the request certainly never arrived (a failure without an answer
    # otherwise may have arrived: the service can have it although we never saw the answer).
    never_sent: bool = False

    def __post_init__(self) -> None:
        super().__init__(self.message)

    @property
    def may_have_arrived(self) -> bool:
        """No answer came back after the request left (a read timeout, a dropped connection): the
        service may have it. An answer, or no connection at all: the answer (or its absence) says."""
        return self.status is None and not self.never_sent


class CallPostponed(RemoteCallError):
    """The call was not made: the service's quota is used up for longer than the caller may hold its
    thread. The work is given back to be tried after exactly `retry_after` seconds, and that is not
    counted as an attempt."""

    def __init__(self, message: str, *, service: Service, retry_after: float) -> None:
        super().__init__(
            Outcome.RATE_LIMITED, message, service=service, retry_after=retry_after, never_sent=True
        )


@dataclass(frozen=True)
class BackoffPolicy:
    """Exponential backoff with full jitter. Defaults: 3 quick in-call attempts, 0.5 s base, 30 s cap.

    Longer waits (up to 24 h for deliveries) are scheduled by the job layer, not slept here."""

    attempts: int = 3
    base: float = 0.5
    cap: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after the `attempt`-th failure (1-based)."""
        ceiling = min(self.cap, self.base * self.factor ** (attempt - 1))
        return (rng or random).uniform(0, ceiling)


class RemoteCall(Base):
    """One attempt of one call to BigCommerce or SALESmanago. Never holds credentials."""

    __tablename__ = "remote_calls"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    service: Mapped[str] = mapped_column(String(16))  # bigcommerce | salesmanago
    method: Mapped[str] = mapped_column(String(8))
    endpoint: Mapped[str] = mapped_column(String(255))  # path only, no query string, no secrets
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    # What the call was for, e.g. "delivery:42", "export:7", "login".
    context: Mapped[str] = mapped_column(String(64), default="", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def record_call(session: Session, **fields: object) -> RemoteCall:
    row = RemoteCall(**fields)
    session.add(row)
    return row
