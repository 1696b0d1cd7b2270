"""What one unit of queued work runs with (Context: the store, its settings and clients) and what
became of the row (RowStatus, Result)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.db.models import Store
from smbc.db.session import Database


class RowStatus(StrEnum):
    """Where a queued row stands (the `status` column of every table using `engine.queue.QueuedRow`)."""

    PENDING = "pending"  # waiting for a worker (next_attempt_at says when)
    PROCESSING = "processing"  # a worker holds it (locked_at says since when)
    DONE = "done"  # sent, or nothing needed sending
    FAILED = "failed"  # the data was refused, or retries ran out
    SKIPPED = "skipped"  # nothing to send, `reason` says why (ignored domain, no contact, ...)
    WAITING = "waiting"  # the store's sync is paused (credentials); resumed by `engine.pausing.resume_store`


class SalesmanagoPort(Protocol):
    """What queued work needs from `smbc.salesmanago.client.SalesmanagoClient`."""

    def upsert_contact(self, payload: dict[str, Any]) -> str: ...

    def integration_upsert(
        self, contact_payload: dict[str, Any], event: dict[str, Any]
    ) -> tuple[str, str]: ...

    def add_event(self, event: dict[str, Any]) -> str: ...

    def update_event(self, event: dict[str, Any]) -> str: ...

    def delete_contact(self, email: str) -> Any: ...

    def contact_basic(self, emails: list[str]) -> list[dict[str, Any]]: ...


class OwnedSettings(Protocol):
    """What the engine reads of a store's settings (`smbc.settings.store_settings.StoreSettings`)."""

    @property
    def contact_owner(self) -> str: ...


SettingsT = TypeVar("SettingsT", bound=OwnedSettings)


@dataclass
class Result:
    """What became of one queued row; `engine.queue.finish` writes it."""

    status: RowStatus
    reason: str = ""
    error: str = ""
    retry_after: float | None = None
    exact: bool = False  # retry after exactly `retry_after` (a short wait for another worker)
    unexpected: bool = False  # an error the outcome table does not know: retried a bounded number of times
    postponed: bool = False  # given back untried (the quota was used up): not counted as an attempt

    @classmethod
    def done(cls, reason: str = "") -> Result:
        return cls(RowStatus.DONE, reason)

    @classmethod
    def skipped(cls, reason: str) -> Result:
        return cls(RowStatus.SKIPPED, reason)

    @classmethod
    def retry(cls, error: str, after: float | None = None, *, exact: bool = False) -> Result:
        return cls(RowStatus.PENDING, error=error, retry_after=after, exact=exact)

    @classmethod
    def postpone(cls, error: str, after: float) -> Result:
        """Given back untried, to be claimed again after exactly `after` seconds."""
        return cls(RowStatus.PENDING, error=error, retry_after=after, exact=True, postponed=True)

    @classmethod
    def waiting(cls, reason: str, error: str = "") -> Result:
        return cls(RowStatus.WAITING, reason, error)

    @classmethod
    def failed(cls, reason: str, error: str = "") -> Result:
        return cls(RowStatus.FAILED, reason, error)


def _no_location(channel_id: int) -> str:
    raise LookupError(f"no storefront naming given to this context (channel {channel_id})")


@dataclass
class Context(Generic[SettingsT]):
    """One store's unit of work: its snapshot, settings and clients, and the calls they record.

    `locate` names a storefront (channel id -> SALESmanago location); the feature building the
    context supplies it, because naming storefronts is a mapping rule above the engine."""

    db: Database
    store: Store  # detached snapshot
    settings: SettingsT
    bc: BigCommerceClient
    sm: SalesmanagoPort
    calls: CallBuffer
    now: datetime
    prefetched: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    locate: Callable[[int], str] = _no_location

    @property
    def owner(self) -> str:
        return self.settings.contact_owner

    def location(self, channel_id: int | None) -> str:
        return self.locate(int(channel_id or 1))
