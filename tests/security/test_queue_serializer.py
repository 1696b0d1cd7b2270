"""Write access to the queue's storage (Redis) is not code execution in the workers: messages are JSON
naming a registered task and its ids, and a pickle put in the queue is dropped, never unpickled."""

from __future__ import annotations

import os
import pickle
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from huey.consumer import Worker
from huey.storage import MemoryStorage

from smbc.core import jobs

ran: list[int] = []


@jobs.huey.task()
def note_id_task(row_id: int) -> int:
    ran.append(row_id)
    return row_id


class Exploit:
    """Unpickling this makes a directory: the stand-in for any code an attacker would run."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


@pytest.fixture(params=["sqlite", "redis"])
def queue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    name = f"smbcsec{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'queue.db'}"
    else:
        url = request.getfixturevalue("redis_url")
    jobs.configure_queue(url, var_dir=tmp_path, name=name)
    ran.clear()
    try:
        yield request.param
    finally:
        jobs.huey.flush()
        jobs.huey.storage = MemoryStorage(name="smbc")


def test_a_pickle_in_the_queue_is_dropped_not_executed(queue: str, tmp_path: Path) -> None:
    marker = tmp_path / "code-ran"
    jobs.huey.storage.enqueue(pickle.dumps(Exploit(marker)), 0)
    note_id_task(7)  # a genuine message behind it still runs
    worker = Worker(jobs.huey, threading.Event(), default_delay=0.01, max_delay=0.01, backoff=1.0)
    worker.loop()  # the pickle: refused ("Error reading from queue" in the log)
    worker.loop()  # the genuine task
    assert not marker.exists(), "unpickling the queue message ran code in the worker"
    assert ran == [7]
    assert jobs.huey.pending_count() == 0


def test_messages_are_json_with_ids_only(queue: str) -> None:
    eta = (datetime.now() + timedelta(seconds=60)).replace(microsecond=0)  # Huey keeps whole seconds
    note_id_task.schedule((42,), eta=eta)
    raw = jobs.huey.storage.dequeue()
    assert raw is not None and raw.startswith(b'{"$message"')
    task = jobs.huey.deserialize_task(raw)
    assert task.args == (42,) and task.eta == eta
    jobs.huey.add_schedule(task)  # a worker parks a future task in the schedule, serialized the same way
    (scheduled,) = jobs.huey.scheduled()
    assert scheduled.args == (42,) and scheduled.eta == eta


def test_anything_but_ids_is_refused_when_enqueued(queue: str) -> None:
    with pytest.raises(TypeError):
        note_id_task(Exploit(Path("/nonexistent")))  # type: ignore[arg-type]
    assert jobs.huey.pending_count() == 0
