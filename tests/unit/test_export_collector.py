"""An export run in a process that did not settle its garbage collector settles it for the run only."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from smbc.export.runner import _collector_settled


@pytest.fixture
def unsettled() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def test_an_unsettled_process_is_settled_for_the_run_and_left_as_it_was(unsettled: None) -> None:
    with _collector_settled():
        assert gc.get_threshold()[0] == 20_000 and gc.get_freeze_count() > 0
    assert gc.get_threshold() == (700, 10, 10) and gc.get_freeze_count() == 0


def test_a_settled_process_is_left_alone(unsettled: None) -> None:
    gc.set_threshold(20_000, 50, 100)
    with _collector_settled():
        assert gc.get_threshold() == (20_000, 50, 100) and gc.get_freeze_count() == 0
