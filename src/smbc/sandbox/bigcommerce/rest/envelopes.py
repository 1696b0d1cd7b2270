"""The v3 answer envelope `{data, meta}`, and a page of a list in it (v2 answers are bare JSON)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import msgspec
from fastapi.responses import JSONResponse

from smbc.sandbox.bigcommerce import listing
from smbc.sandbox.bigcommerce.state import Json

T = TypeVar("T")


class FastJSON(JSONResponse):
    """The same JSON as JSONResponse (compact, UTF-8; a float's exponent may be written shorter),
    encoded by msgspec: a page of 250 orders took the fake 19 ms in `json.dumps`, 2 here."""

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


def v3_answer(data: Any, meta: Json | None = None) -> JSONResponse:
    return FastJSON({"data": data, "meta": meta if meta is not None else {}})


def v3_page(
    rows: Sequence[T],
    page: int,
    limit: int,
    render: Callable[[T], Json],
    query: dict[str, str] | None = None,
) -> JSONResponse:
    """One page of `rows` with `meta.pagination`; `query` (the filters) is repeated in its links."""
    data = [render(row) for row in listing.offset_page(rows, page, limit)]
    return v3_answer(data, {"pagination": pagination(len(rows), page, limit, len(data), query)})


def pagination(total: int, page: int, limit: int, count: int, query: dict[str, str] | None = None) -> Json:
    """`meta.pagination` of an offset page; its links repeat `query`'s filters with the other pages."""
    extra = {k: v for k, v in query.items() if k not in ("page", "limit")} if query is not None else None
    return listing.pagination_meta(total, page, limit, count, extra)
