"""Request budgets shared by every process of a deployment: at most `limit` hits per key in each
window of `window_s` seconds (fixed windows: a key may get up to twice the limit across a boundary,
which still bounds a flood).

The counters live where every process can see them: in Redis when the queue is Redis
(`SMBC_QUEUE_URL=redis://...`, keys under `SMBC_QUEUE_NAME`), otherwise in the database. Never in one
process's memory, so N web processes allow the limit once, not N times."""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import BigInteger, Integer, String, delete
from sqlalchemy.orm import Mapped, mapped_column

from smbc.core.clock import get_clock
from smbc.core.config import Settings
from smbc.db.base import Base
from smbc.db.session import Database, conflict_insert

log = logging.getLogger(__name__)

KEY_MAX = 128


class RateCounter(Base):
    """Hits of one key in one window of one budget."""

    __tablename__ = "rate_limit_counters"

    budget: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_MAX), primary_key=True)
    window_no: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # floor(time / window_s)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)  # epoch seconds: the window's end


@dataclass(frozen=True)
class Budget:
    name: str
    limit: int
    window_s: int


class Counters(Protocol):
    def hit(self, budget: Budget, key: str, window: int, expires_at: int) -> int:
        """Count one hit; the key's hits in that window so far, this one included."""
        ...


class DatabaseCounters:
    """One row per key and window, incremented with an upsert (SQLite and PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def hit(self, budget: Budget, key: str, window: int, expires_at: int) -> int:
        with self.db.session() as session:
            dialect = session.get_bind().dialect.name
            table = RateCounter.__table__
            statement = (
                conflict_insert(dialect, table)
                .values(budget=budget.name, key=key, window_no=window, hits=1, expires_at=expires_at)
                .on_conflict_do_update(
                    index_elements=["budget", "key", "window_no"], set_={"hits": table.c.hits + 1}
                )
                .returning(table.c.hits)
            )
            hits = int(session.execute(statement).scalar_one())
        if hits == 1:  # a new window: forget the ended ones (in a transaction of its own)
            self._forget_ended(budget)
        return hits

    def _forget_ended(self, budget: Budget) -> None:
        now = int(get_clock().time())
        try:
            with self.db.session() as session:
                session.execute(
                    delete(RateCounter).where(RateCounter.budget == budget.name, RateCounter.expires_at < now)
                )
        except Exception:  # another process may be deleting the same rows; the next new window retries
            log.debug("could not delete ended rate-limit windows", exc_info=True)


class RedisCounters:
    """INCR on a key that expires with its window."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self.prefix = prefix

    def hit(self, budget: Budget, key: str, window: int, expires_at: int) -> int:
        name = f"{self.prefix}:{budget.name}:{key}:{window}"
        pipe = self._redis.pipeline()
        pipe.incr(name)
        # Relative: tests move the process clock, Redis expires keys in real time.
        pipe.expire(name, budget.window_s * 2)
        hits, _ = pipe.execute()
        return int(hits)

    def close(self) -> None:
        self._redis.close()


_redis_counters: dict[str, RedisCounters] = {}
_redis_lock = threading.Lock()


def shared_counters(settings: Settings, db: Database) -> Counters:
    """Redis counters when the queue is Redis (one client per URL and name), else the database's."""
    if not settings.queue_url.startswith(("redis://", "rediss://")):
        return DatabaseCounters(db)
    cache_key = f"{settings.queue_url}#{settings.queue_name}"
    with _redis_lock:
        if cache_key not in _redis_counters:
            _redis_counters[cache_key] = RedisCounters(settings.queue_url, f"{settings.queue_name}:rl")
        return _redis_counters[cache_key]


def counter_key(parts: tuple[str, ...]) -> str:
    """The parts as one key of at most KEY_MAX characters (a longer one is hashed)."""
    key = "|".join(parts)
    return key if len(key) <= KEY_MAX else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


class RateLimiter:
    """One budget over shared counters."""

    def __init__(self, budget: Budget, counters: Counters) -> None:
        self.budget = budget
        self.counters = counters

    def allow(self, key: tuple[str, ...]) -> tuple[bool, float]:
        """(allowed, seconds until the key's next window) for one more hit of `key`."""
        now = get_clock().time()
        window = int(now // self.budget.window_s)
        ends = (window + 1) * self.budget.window_s
        hits = self.counters.hit(self.budget, counter_key(key), window, ends)
        if hits > self.budget.limit:
            return False, max(0.0, ends - now)
        return True, 0.0
