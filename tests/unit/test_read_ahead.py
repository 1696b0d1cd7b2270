"""ReadAhead: the next page is read while this one is handled; order, errors and early stops."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from smbc.engine.read_ahead import IDLE, ReadAhead


def test_items_come_in_order_and_all_of_them() -> None:
    assert list(ReadAhead(iter(range(50)))) == list(range(50))
    assert list(ReadAhead(iter([]))) == []


def test_the_next_item_is_read_while_the_consumer_holds_this_one() -> None:
    reading_second = threading.Event()

    def pages() -> Iterator[int]:
        yield 1
        reading_second.set()
        yield 2

    seen = []
    for page in ReadAhead(pages()):
        if page == 1:  # still handling page 1: the reader must already be at page 2
            assert reading_second.wait(timeout=10)
        seen.append(page)
    assert seen == [1, 2]


def test_an_error_of_the_source_is_raised_at_its_place() -> None:
    def pages() -> Iterator[int]:
        yield 1
        raise RuntimeError("BigCommerce said no")

    seen = []
    with pytest.raises(RuntimeError, match="BigCommerce said no"):
        for page in ReadAhead(pages()):
            seen.append(page)
    assert seen == [1]


def test_leaving_early_stops_the_reader_one_item_ahead() -> None:
    produced = []
    finished = threading.Event()

    def pages() -> Iterator[int]:
        try:
            for n in range(1000):
                produced.append(n)
                yield n
        finally:
            finished.set()

    reader = ReadAhead(pages(), depth=1)
    for page in reader:
        if page == 3:
            break
    reader.close()
    assert finished.wait(timeout=10)  # the source was closed, not left blocked
    assert len(produced) <= 6  # one in hand, one queued, one being put: never the whole source


def test_idling_yields_idle_while_the_source_is_slow_and_every_item_in_order() -> None:
    release = threading.Event()

    def pages() -> Iterator[int]:
        yield 1
        release.wait(timeout=10)  # a page that is slow to come (quota, latency)
        yield 2

    seen: list[object] = []
    for item in ReadAhead(pages()).idling(0.01):
        seen.append(item)
        if item is IDLE:
            release.set()
    assert seen[0] == 1 and seen[-1] == 2 and IDLE in seen
    assert [item for item in seen if item is not IDLE] == [1, 2]
