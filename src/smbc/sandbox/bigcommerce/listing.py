"""Query parsing, filtering and pagination as BigCommerce's list endpoints do them (pure functions)."""

from __future__ import annotations

import base64
import bisect
import json
from collections.abc import Callable, Container, Iterable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlencode

T = TypeVar("T")
MAX_LIMIT = 250
DEFAULT_LIMIT = 50


class QueryError(ValueError):
    """A query parameter BigCommerce would reject (answered 400 on v2, 422 on v3)."""


def parse_datetime(value: str, name: str) -> datetime:
    """ISO-8601 (`2024-05-14T09:34:00`, `2024-05-14`, with or without offset), RFC-2822 or unix seconds."""
    text = value.strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            raise QueryError(f"{name}: {value!r} is not a date (use ISO-8601 or RFC-2822)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_int(
    value: str | None, name: str, default: int | None = None, minimum: int | None = None
) -> int | None:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise QueryError(f"{name}: {value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise QueryError(f"{name} must be at least {minimum}")
    return number


def parse_int_list(value: str | None, name: str) -> list[int] | None:
    if value is None:
        return None
    return [parse_int(v, name) for v in value.split(",") if v.strip()]  # type: ignore[misc]


def id_set(params: dict[str, str], name: str) -> set[int] | None:
    """The ids of an `<x>:in` parameter (None: no such filter)."""
    wanted = parse_int_list(params.get(name), name)
    return set(wanted) if wanted is not None else None


def int_set(params: dict[str, str], name: str) -> set[int] | None:
    """The ids of a `<x>` and a `<x>:in` parameter together (None: neither is given)."""
    values = parse_int_list(params.get(f"{name}:in"), f"{name}:in")
    single = parse_int(params.get(name), name)
    if single is not None:
        values = [*(values or []), single]
    return set(values) if values is not None else None


def filter_key(params: dict[str, str], ignored: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """A list query's filters, without the parameters that only choose the page or the rendering (so
    every page of one filtered list shares one cached list)."""
    skip = set(ignored)
    return tuple(sorted((k, v) for k, v in params.items() if k not in skip))


def kept_in(params: dict[str, str], field: str, rows: Iterable[T], name: str | None = None) -> list[T]:
    """The rows whose `field` is one of the ids of the `<field>:in` parameter (or of `name`); every row
    when there is no such parameter."""
    wanted = id_set(params, name or f"{field}:in")
    return [row for row in rows if wanted is None or getattr(row, field) in wanted]


def str_set(params: dict[str, str], name: str) -> set[str] | None:
    """The values of a `<x>` and a `<x>:in` parameter together (None: neither is given)."""
    values = parse_str_list(params.get(f"{name}:in"))
    if params.get(name):
        values = [*(values or []), params[name]]
    return set(values) if values is not None else None


def parse_str_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def included(params: dict[str, str]) -> set[str]:
    """The names listed in the `include` parameter (the sub-resources to add to each row)."""
    return set(parse_str_list(params.get("include")) or [])


def sort_order(params: dict[str, str], sorts: Container[str]) -> tuple[str, bool]:
    """A `sort=<field>:<asc|desc>` parameter (default `id:asc`): the field and whether descending."""
    field, _, direction = (params.get("sort") or "id:asc").partition(":")
    if field not in sorts or direction not in ("asc", "desc", ""):
        raise QueryError(f"sort: {params.get('sort')!r} is not supported")
    return field, direction == "desc"


def page_and_limit(params: dict[str, str], default_limit: int = DEFAULT_LIMIT) -> tuple[int, int]:
    page = parse_int(params.get("page"), "page", 1, minimum=1) or 1
    limit = parse_int(params.get("limit"), "limit", default_limit, minimum=1) or default_limit
    # BigCommerce's maximum page size is 250 on every list; larger values are capped.
    return page, min(limit, MAX_LIMIT)


def date_range(
    params: dict[str, str], field: str
) -> tuple[datetime | None, datetime | None, datetime | None]:
    """(exact, min, max) for a v3 `field`, `field:min`, `field:max` filter."""
    exact = params.get(field)
    low = params.get(f"{field}:min")
    high = params.get(f"{field}:max")
    return (
        parse_datetime(exact, field) if exact else None,
        parse_datetime(low, f"{field}:min") if low else None,
        parse_datetime(high, f"{field}:max") if high else None,
    )


def in_range(value: datetime, exact: datetime | None, low: datetime | None, high: datetime | None) -> bool:
    if exact is not None and value != exact:
        return False
    if low is not None and value < low:
        return False
    return not (high is not None and value > high)


def offset_page(items: Sequence[T], page: int, limit: int) -> list[T]:
    start = (page - 1) * limit
    return list(items[start : start + limit])


def pagination_meta(
    total: int, page: int, limit: int, count: int, extra: dict[str, str] | None = None
) -> dict[str, Any]:
    total_pages = (total + limit - 1) // limit if total else 0

    def query(p: int) -> str:
        return "?" + urlencode({**(extra or {}), "page": p, "limit": limit})

    links: dict[str, str] = {"current": query(page)}
    if page > 1:
        links["previous"] = query(page - 1)
    if page < total_pages:
        links["next"] = query(page + 1)
    return {
        "total": total,
        "count": count,
        "per_page": limit,
        "current_page": page,
        "total_pages": total_pages,
        "links": links,
    }


def encode_cursor(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, name: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError):
        raise QueryError(f"{name}: invalid cursor") from None
    if not isinstance(key, list):
        raise QueryError(f"{name}: invalid cursor")
    return key


def cursor_page(
    items: Sequence[T],
    key: Callable[[T], list[Any]],
    descending: bool,
    after: str | None,
    before: str | None,
    limit: int,
    keys: Sequence[list[Any]] | None = None,
) -> list[T]:
    """The page after (or before) a cursor in a list already sorted by `key` (ascending or descending).

    With `keys` (= [key(i) for i in items]) an ascending list is cut by bisection instead of a scan."""
    if keys is not None and not descending:
        if after is not None:
            start = bisect.bisect_right(keys, decode_cursor(after, "after"))
            return list(items[start : start + limit])
        assert before is not None
        end = bisect.bisect_left(keys, decode_cursor(before, "before"))
        return list(items[max(0, end - limit) : end])

    def past(item_key: list[Any], mark: list[Any]) -> bool:
        return item_key < mark if descending else item_key > mark

    if after is not None:
        mark = decode_cursor(after, "after")
        out: list[T] = []
        for item in items:
            if past(key(item), mark):
                out.append(item)
                if len(out) == limit:
                    break
        return out
    assert before is not None
    mark = decode_cursor(before, "before")
    earlier = [item for item in items if past(mark, key(item))]
    return earlier[-limit:]


def cursor_meta(
    page: Sequence[T], key: Callable[[T], list[Any]], limit: int, has_more_after: bool, has_before: bool
) -> dict[str, Any]:
    start = encode_cursor(key(page[0])) if page else ""
    end = encode_cursor(key(page[-1])) if page else ""
    links: dict[str, str] = {}
    if has_more_after and page:
        links["next"] = "?" + urlencode({"limit": limit, "after": end})
    if has_before and page:
        links["previous"] = "?" + urlencode({"limit": limit, "before": start})
    return {
        "count": len(page),
        "per_page": limit,
        "start_cursor": start,
        "end_cursor": end,
        "links": links,
    }


def first_matches(items: Iterable[T], predicate: Callable[[T], bool], skip: int, take: int) -> list[T]:
    """Skip `skip` matches then take `take`, stopping early (v2 lists have no totals to count)."""
    out: list[T] = []
    for item in items:
        if predicate(item):
            if skip:
                skip -= 1
                continue
            out.append(item)
            if len(out) == take:
                break
    return out
