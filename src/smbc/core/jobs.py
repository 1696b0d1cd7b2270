"""The Huey instance. Storage is chosen at start from SMBC_QUEUE_URL: SQLite (embedded) or Redis.

The database is the source of truth for work; a queued task only says "work on row N now", so a
lost queue message is recovered by the periodic sweeps, never by re-sending anything.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from huey import Huey
from huey.consumer import Consumer
from huey.registry import Message
from huey.serializer import Serializer
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage
from huey.utils import Error


class JSONSerializer(Serializer):
    """Queue messages as JSON instead of pickle: whoever can write to the queue's storage (Redis) can
    at most name a registered task with id arguments, never run code in a worker. Besides JSON's own
    types it carries exactly what Huey puts in a message: the message itself (nested for callbacks),
    tuples, datetimes (an `eta`, a revocation) and a failed task's error record. Anything else is
    refused when enqueued: tasks take ids (the database holds the rest)."""

    def _serialize(self, data: Any) -> bytes:
        return json.dumps(_tagged(data), separators=(",", ":")).encode()

    def _deserialize(self, data: bytes) -> Any:
        try:
            return json.loads(data, object_hook=_untagged)
        except (ValueError, TypeError) as exc:  # a pickle, or anything not written by us
            raise ValueError(f"queue message is not this app's JSON, dropped: {exc}") from None


def _tagged(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Message):
        return {"$message": {k: _tagged(v) for k, v in value._asdict().items()}}
    if isinstance(value, Error):
        return {"$error": _tagged(value.metadata)}
    if isinstance(value, tuple):
        return {"$tuple": [_tagged(v) for v in value]}
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dict) and all(isinstance(k, str) and not k.startswith("$") for k in value):
        return {k: _tagged(v) for k, v in value.items()}
    raise TypeError(f"the queue carries ids, not {type(value).__name__} values")


def _untagged(obj: dict[str, Any]) -> Any:
    if len(obj) != 1 or not next(iter(obj)).startswith("$"):
        return obj
    ((tag, value),) = obj.items()
    if tag == "$message":
        return Message(**{k: v for k, v in value.items() if k in Message._fields})
    if tag == "$error":
        return Error(value)
    if tag == "$tuple":
        return tuple(value)
    if tag == "$datetime":
        return datetime.fromisoformat(value)
    raise ValueError(f"unknown tag {tag!r} in a queue message")


huey = Huey("smbc", storage_class=MemoryStorage, utc=True, serializer=JSONSerializer())


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
    "smbc.stores.uninstall",
    "smbc.engine.queue",
    "smbc.retention.pruning",
    "smbc.catalog.schedule",
    "smbc.catalog.sync",
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
