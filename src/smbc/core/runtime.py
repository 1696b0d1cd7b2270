"""The process's settings, database and queue, set up once by `serve`, `worker` or a test."""

from __future__ import annotations

from dataclasses import dataclass

from smbc.core import encryption, jobs
from smbc.core.config import Settings
from smbc.db.session import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database


_runtime: Runtime | None = None


def init_runtime(settings: Settings, *, migrate: bool = False) -> Runtime:
    """Configure encryption, the database and the queue for this process."""
    global _runtime
    encryption.configure(settings.secret_keys)
    db = Database(settings.database_url)
    if migrate:
        db.upgrade()
    jobs.configure_queue(settings.queue_url, var_dir=settings.var_dir, name=settings.queue_name)
    _runtime = Runtime(settings=settings, db=db)
    return _runtime


def get_runtime() -> Runtime:
    if _runtime is None:
        raise RuntimeError(
            "runtime not initialised: smbc serve, smbc worker or a test must call init_runtime()"
        )
    return _runtime


def close_runtime() -> None:
    global _runtime
    if _runtime is not None:
        _runtime.db.dispose()
        _runtime = None
