"""Reading a BigCommerce list page after page: `/v2` lists by keyset (`min_id`), `/v3` lists by
cursor (`after`) or page number. Each page is read through the list's item model."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from smbc.bigcommerce.answers import V3List, V3Pagination, as_dict, list_item_model
from smbc.core.answers import AnswerModel, AsSent

PAGE_LIMIT = 250


class ReadPage(Protocol):
    """One page's answer: its body, read as the model the request asked for."""

    @property
    def data(self) -> Any: ...


class PageSource(Protocol):
    """What paging needs of a client: one GET, its answer read as a model."""

    def request(self, method: str, path: str, params: Mapping[str, Any], *, answer: Any) -> ReadPage: ...


def plain_dicts(items: Sequence[Any]) -> list[dict[str, Any]]:
    """Read models back to the plain dicts callers take (fields as BigCommerce sent them)."""
    return [as_dict(item) if isinstance(item, AnswerModel) else item for item in items]


@dataclass
class V2ListRead:
    """A `/v2` list read in ascending id order from past `cursor` (the last id done), with `params` (its
    filters) on every request, `limit` a page, and `expected`, how many items the list holds past
    `cursor` when a count of the same filters said so (see `V2Pages`)."""

    client: PageSource
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    limit: int = PAGE_LIMIT
    cursor: int | None = None
    expected: int | None = None


@dataclass
class V2Pages(V2ListRead):
    """`/v2` lists moving on by `min_id` (keyset, sort id:asc); 204 or a short page ends them.

    `cursor` is the last id seen, so an export can save it and resume with `min_id=cursor+1`.
    `expected`: how many items the list holds past `cursor`, when a count of the same filters said
    so and nothing can have been added since: a full page that brings the items read to exactly
    that many ends the list without the empty page that would say so. More items than expected
    means the count is stale: the list is read to its end as without one."""

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        item = list_item_model(self.path)
        if item is dict[str, Any]:
            raise ValueError(f"V2Pages needs an item model with an id for {self.path}")  # keyset paging
        answer = AsSent(list[item])
        read = 0
        while True:
            params = {**self.params, "limit": self.limit, "sort": "id:asc"}
            if self.cursor is not None:
                params["min_id"] = self.cursor + 1
            # Plain dicts as sent: a page is read by its item model without a model per item.
            page = self.client.request("GET", self.path, params, answer=answer).data or []
            if not page:
                return
            self.cursor = max(int(entry["id"]) for entry in page)
            read += len(page)
            yield page
            if len(page) < self.limit or read == self.expected:
                return

    def items(self) -> Iterator[dict[str, Any]]:
        for page in self:
            yield from page


@dataclass
class V3Pages:
    """`/v3` lists: cursor pagination (`after`) when the answer offers it, else page numbers.

    `cursor` holds the next `after` value (or page number) so a caller can save and resume."""

    client: PageSource
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    limit: int = PAGE_LIMIT
    cursor: str | None = None
    page: int = 1
    # The model of one item; None: the one `answers.LIST_ITEMS` registers for the path.
    item: Any = None

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        while True:
            params = {**self.params, "limit": self.limit}
            if self.cursor is not None:
                params["after"] = self.cursor
            else:
                params["page"] = self.page
            answer = V3List[self.item or list_item_model(self.path)]  # type: ignore[misc]
            body = self.client.request("GET", self.path, params, answer=answer).data
            data = body.data if body is not None else []
            meta = body.meta if body is not None else None
            if data:
                yield plain_dicts(data)
            cursor_meta = meta.cursor_pagination if meta is not None else None
            if cursor_meta is not None and data:
                next_cursor = cursor_meta.end_cursor
                has_next_link = bool(cursor_meta.links and cursor_meta.links.next)
                if next_cursor and has_next_link and str(next_cursor) != self.cursor:
                    self.cursor = str(next_cursor)
                    continue
            if self.cursor is not None or not data:
                return
            next_page = self._next_page(len(data), meta.pagination if meta is not None else None)
            if next_page is None:
                return
            self.page = next_page

    def _next_page(self, count: int, pagination: V3Pagination | None) -> int | None:
        """The page number to ask for next, or None at the end of the list."""
        pages = pagination.page_count(self.limit) if pagination is not None else None
        if pagination is None or pages is None:
            # No page count: a full page may have a next one, so ask (an empty page ends it).
            return self.page + 1 if count >= self.limit else None
        current = max(pagination.current_page or 0, self.page)  # never asks for a page twice
        return current + 1 if current < pages else None

    def items(self) -> Iterator[dict[str, Any]]:
        for page in self:
            yield from page
