"""QueuedMarks.send: a message per key not marked yet, with its mark; none for a key already marked.
With Redis the marks and the messages go in one script, so both are checked on it and on the
embedded queue with inline workers (where the marks live in the process)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from huey.api import TaskWrapper

from smbc.core import jobs
from smbc.core.job_batches import QueuedMarks
from smbc.core.jobs import huey

SENT: list[int] = []


@huey.task()
def marked_test_task(key: int) -> None:
    SENT.append(key)


@pytest.fixture(params=["redis", "sqlite"])
def queue(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    previous = huey.storage
    name = f"smbcmarks{uuid.uuid4().hex[:12]}"
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        jobs.configure_queue(url, name=name)
    else:
        jobs.configure_queue(f"sqlite:///{tmp_path / 'queue.db'}", name=name)
        monkeypatch.setattr(QueuedMarks, "_marks_locally", lambda self: True)  # inline workers
    try:
        yield request.param
    finally:
        if request.param == "redis":
            client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
            keys = list(client.scan_iter(f"*{name}*"))
            if keys:
                client.delete(*keys)
        huey.storage = previous


def queued_keys() -> list[int]:
    """The keys of the queued messages, in the order a worker takes them."""
    keys = []
    while (message := huey.dequeue()) is not None:
        keys.append(message.args[0])
    return keys


def test_send_queues_a_message_per_key_not_marked(queue: str) -> None:
    task: TaskWrapper = marked_test_task
    marks = QueuedMarks(f"test-{uuid.uuid4().hex[:8]}", 30.0)
    assert marks.send(task, [3, 1, 2]) == [3, 1, 2]
    assert marks.send(task, [1, 4, 2]) == [4]  # 1 and 2 are queued and not started
    assert queued_keys() == [3, 1, 2, 4]  # taken in the order sent
    marks.clear([1])  # its drain started: the next delivery's message goes out
    assert marks.send(task, [1, 2]) == [1]
    assert queued_keys() == [1]
    assert marks.send(task, []) == []


def test_a_mark_lapses(queue: str) -> None:
    marks = QueuedMarks(f"test-{uuid.uuid4().hex[:8]}", 0.05)
    assert marks.send(marked_test_task, [7]) == [7]
    time.sleep(0.1)
    assert marks.send(marked_test_task, [7]) == [7]
    assert queued_keys() == [7, 7]


def test_a_key_found_marked_is_noted_for_the_holder_of_its_mark(queue: str) -> None:
    marks = QueuedMarks(f"test-{uuid.uuid4().hex[:8]}", 30.0)
    assert marks.send(marked_test_task, [5, 6]) == [5, 6]
    assert marks.take(5) is False  # nothing arrived while it was marked: no look needed
    assert marks.send(marked_test_task, [5, 6]) == [5]  # 6 is marked: no message, an arrival noted
    assert marks.claim([5]) == []  # a claim that finds the mark notes one too
    assert (marks.take(5), marks.take(6)) == (True, True)
    assert (marks.take(5), marks.take(6)) == (False, False)  # taken once
    assert marks.send(marked_test_task, [7, 7]) == [7]
    marks.forget_arrivals(7)  # its holder claims now: what arrived so far is in that claim
    assert marks.take(7) is False
    assert queued_keys() == [5, 6, 5, 7]
