"""The generic tolerant reader: opportunistic fields fall back with a warning naming the call and
field; required ones make an `invalid` outcome; nothing else escapes."""

from __future__ import annotations

import logging

import pytest

from smbc.core.answers import AnswerError, AnswerModel, opportunistic, read_answer
from smbc.core.remote_calls import Outcome, Service


class Line(AnswerModel):
    sku: str
    quantity: int = opportunistic(0)


class Thing(AnswerModel):
    id: int
    note: str | None = opportunistic(often_absent=True)
    name: str | None = opportunistic()
    tags: list[str] = opportunistic(default_factory=list)
    lines: list[Line] = opportunistic(default_factory=list)


def good() -> dict[str, object]:
    return {"id": 7, "name": "Ann", "tags": ["a"], "lines": [{"sku": "X", "quantity": 2}], "kept": {"x": 1}}


def test_a_good_answer_reads_whole_and_keeps_undeclared_fields() -> None:
    notes: list[str] = []
    thing = read_answer(Thing, good(), call="GET /things/7", notes=notes)
    assert thing.model_dump(exclude_unset=True) == good()
    assert notes == []


def test_a_wrongly_typed_opportunistic_field_becomes_its_default_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notes: list[str] = []
    with caplog.at_level(logging.WARNING, logger="smbc.core.answers"):
        thing = read_answer(Thing, {**good(), "name": 42, "tags": "a,b"}, call="GET /things/7", notes=notes)
    assert (thing.id, thing.name, thing.tags) == (7, None, [])
    assert [n.split(" ")[0] for n in notes] == ["Thing.name", "Thing.tags"]
    assert "GET /things/7" in caplog.text and "Thing.name" in caplog.text
    assert "42" not in " ".join(notes)  # values are never echoed


def test_a_missing_opportunistic_field_is_noted_and_a_null_one_is_not() -> None:
    notes: list[str] = []
    data = good()
    del data["tags"]
    data["name"] = None
    thing = read_answer(Thing, data, call="c", notes=notes)
    assert thing.tags == [] and thing.name is None
    assert notes == ["Thing.tags ignored (missing)"]


def test_an_unreadable_nested_object_drops_the_opportunistic_field_holding_it() -> None:
    notes: list[str] = []
    thing = read_answer(Thing, {**good(), "lines": [{"quantity": 1}, 5]}, call="c", notes=notes)
    assert thing.lines == []
    assert any(n.startswith("Thing.lines") for n in notes)


def test_an_often_absent_field_is_noted_only_when_wrongly_typed() -> None:
    notes: list[str] = []
    assert read_answer(Thing, good(), call="c", notes=notes).note is None
    assert notes == []
    assert read_answer(Thing, {**good(), "note": 5}, call="c", notes=notes).note is None
    assert [n.split(" ")[0] for n in notes] == ["Thing.note"]


@pytest.mark.parametrize("data", [{"name": "x"}, {"id": "seven"}, {"id": None}, [], "text", None, 3])
def test_a_missing_or_wrong_required_field_is_an_invalid_outcome(data: object) -> None:
    with pytest.raises(AnswerError) as raised:
        read_answer(Thing, data, call="GET /things/7")
    assert str(raised.value).startswith("GET /things/7: unreadable answer:")
    error = raised.value.remote_error(Service.BIGCOMMERCE, status=200)
    assert error.outcome is Outcome.INVALID and not error.outcome.retryable
    assert error.service is Service.BIGCOMMERCE and error.status == 200


def test_lists_of_models_read_item_by_item() -> None:
    things = read_answer(list[Thing], [good(), {"id": "8"}], call="c")
    assert [t.id for t in things] == [7, 8]
    with pytest.raises(AnswerError, match=r"1: Input should be a valid dictionary"):
        read_answer(list[Thing], [good(), "x"], call="c")
