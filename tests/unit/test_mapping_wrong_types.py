"""The pure helpers on BigCommerce values take a value of any type: one of the wrong type reads as
none, never an AttributeError or TypeError in the middle of a send."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from smbc.mapping import rules
from smbc.mapping.records import parse_bc_date

WRONG: list[Any] = [None, 0, 12, 1.5, True, [], ["Tue, 20 Nov 2012 00:00:00 +0000"], {}, {"date": "x"}, b"x"]


@pytest.mark.parametrize("value", WRONG, ids=repr)
def test_a_date_of_the_wrong_type_reads_as_none(value: Any) -> None:
    assert parse_bc_date(value) is None


@pytest.mark.parametrize(
    "text", ["", "   ", "yesterday", "Tue, 99 Foo", "Mon, 1 Jan 99999999999 00:00:00 +0000"]
)
def test_an_unreadable_date_text_reads_as_none(text: str) -> None:
    assert parse_bc_date(text) is None


def test_both_of_bigcommerces_date_forms_are_read() -> None:
    moment = datetime(2012, 11, 20, tzinfo=UTC)
    assert parse_bc_date("Tue, 20 Nov 2012 00:00:00 +0000") == moment
    assert parse_bc_date("2012-11-20T00:00:00Z") == moment
    assert parse_bc_date(" 2012-11-20T00:00:00+00:00 ") == moment


@pytest.mark.parametrize("value", WRONG, ids=repr)
def test_an_email_or_locale_of_the_wrong_type_reads_as_none(value: Any) -> None:
    assert rules.normalize_email(value) == ""
    assert rules.email_problem(value, []) == "no e-mail address"
    assert rules.lang_code(value) is None
    assert rules.store_language(value) is None
    assert rules.store_language({"language": value}) is None


def test_well_typed_values_are_read_as_before() -> None:
    assert rules.normalize_email("  Ann@Example.COM ") == "ann@example.com"
    assert rules.lang_code("pl_PL") == "PL"
    assert rules.store_language({"language": "en-US"}) == "EN"
