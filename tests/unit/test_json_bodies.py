"""The one JSON parser for bodies from outside: refuses what is not JSON and what nests too deeply
(counted before parsing; brackets inside strings do not count)."""

from __future__ import annotations

import pytest

from smbc.core.json_bodies import MAX_JSON_DEPTH, InvalidJSON, nesting_depth, parse_json


def test_depth_counts_arrays_and_objects_but_not_brackets_in_strings() -> None:
    assert nesting_depth('{"a": [1, {"b": "[[[{{{"}], "c": "\\"]]]"}') == 3
    assert nesting_depth("42") == 0


def test_parses_json_up_to_the_limit_and_refuses_deeper() -> None:
    assert parse_json(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH) is not None
    assert parse_json('{"email": "a@example.com"}'.encode("utf-16")) == {"email": "a@example.com"}
    with pytest.raises(InvalidJSON, match="nested deeper than"):
        parse_json(b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1))
    with pytest.raises(InvalidJSON, match="nested deeper than"):
        parse_json(b"[" * 100_000)  # not even well formed: refused before the parser recurses


@pytest.mark.parametrize("body", [b"", b"{not json", b"\xff\xfe\x00", b'{"a": 1'])
def test_what_is_not_json_is_refused(body: bytes) -> None:
    with pytest.raises(InvalidJSON, match="not JSON"):
        parse_json(body)
