"""The Huey instance. Storage is chosen at start from SMBC_QUEUE_URL: SQLite (embedded) or Redis.

The database is the source of truth for work; a queued task only says "work on row N now", so a
lost queue message is recovered by the periodic sweeps, never by re-sending anything.
"""

from __future__ import annotations

from pathlib import Path

from huey import Huey
from huey.consumer import Consumer
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage

huey = Huey("smbc", storage_class=MemoryStorage, utc=True)


class EmbeddedQueueStorage(SqliteStorage):
    """Huey's SQLite storage with `synchronous=NORMAL` (the app database's setting) instead of FULL,
    whose fsync per enqueue was a quarter of the receiver's profile samples. A task lost to a power cut is
    found again by the sweeps (see above), so the queue needs no stronger durability."""

    def _create_connection(self):  # type: ignore[no-untyped-def]
        conn = super()._create_connection()
        conn.execute("pragma synchronous=NORMAL")
        return conn


def configure_queue(url: str, *, var_dir: Path | None = None, name: str = "smbc") -> None:
    """Point the module-level Huey at the storage the URL names."""
    if url.startswith("memory:"):
        huey.storage = MemoryStorage(name=name)
    elif url.startswith("sqlite:"):
        path = Path(url.split("///", 1)[-1] or str((var_dir or Path("var")) / "queue.db"))
        path.parent.mkdir(parents=True, exist_ok=True)
        huey.storage = EmbeddedQueueStorage(name=name, filename=str(path))
    elif url.startswith(("redis://", "rediss://")):
        huey.storage = RedisStorage(name=name, url=url)
    else:
        raise ValueError(f"unsupported SMBC_QUEUE_URL {url!r}")


def queue_reachable() -> bool:
    try:
        huey.pending_count()
    except Exception:
        return False
    return True


# Modules that define @huey.task / @huey.periodic_task; imported before a consumer starts.
TASK_MODULES: list[str] = [
    "smbc.stores.setup",
    "smbc.monitoring.scripts",
    "smbc.realtime.processing",
    "smbc.reconcile.service",
    "smbc.export.service",
    "smbc.consent.write_back",
    "smbc.engine.queue",
]


def import_tasks() -> None:
    import importlib

    for name in TASK_MODULES:
        importlib.import_module(name)


# Workers poll an idle SQLite queue at most every half second (Huey's default backs off to 10 s,
# which would delay a webhook's processing by as much). Redis storage blocks on the list instead.
POLLING = {"initial_delay": 0.05, "backoff": 1.15, "max_delay": 0.5}
SHUTDOWN_TIMEOUT = 15.0


class InlineConsumer(Consumer):
    """A consumer inside the web process: the web server owns SIGINT/SIGTERM (and may run us off the
    main thread, where installing signal handlers fails)."""

    def _set_signal_handlers(self) -> None:
        pass


def start_consumer(workers: int = 4) -> Consumer:
    """Worker threads and the periodic scheduler inside this process (SMBC_WORKERS=inline)."""
    import_tasks()
    consumer = InlineConsumer(
        huey, workers=workers, worker_type="thread", periodic=True, check_worker_health=False
    )
    consumer.start()
    return consumer


def stop_consumer(consumer: Consumer) -> None:
    """Let running tasks finish (at most SHUTDOWN_TIMEOUT); no new task starts once this is called."""
    consumer.stop(graceful=True)
