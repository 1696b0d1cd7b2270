"""Catalog reads on top of `BigCommerceClient`: products of a channel in pages of 250 with their
variants and images in the same call, products by id, channel assignments, categories, brands, and
a channel's default currency.

Product pages go by id (`id:greater`, ascending), so the last id of a page is a cursor a full sync
saves and resumes from."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from smbc.bigcommerce.answers import V3List, V3One, as_dict
from smbc.bigcommerce.client import PAGE_LIMIT, BigCommerceClient, V3Pages
from smbc.core.answers import AnswerModel, opportunistic

PRODUCTS_PATH = "/v3/catalog/products"
PRODUCT_INCLUDE = "variants,images"
# Read by id (real time), a product also says which channels it is assigned to.
PRODUCT_INCLUDE_BY_ID = "variants,images,channels"


class CatalogProduct(AnswerModel):
    """A product as the catalog reads it: the id is required; the mapping reads the rest tolerantly
    (kept as it came)."""

    id: int


def _products(bc: BigCommerceClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    body = bc.request("GET", PRODUCTS_PATH, params, answer=V3List[CatalogProduct]).data
    return [] if body is None else [as_dict(p) for p in body.data]


def _csv(values: Sequence[object]) -> str:
    return ",".join(str(v) for v in values)


def product_page(
    bc: BigCommerceClient, channel_id: int, after_id: int = 0, limit: int = PAGE_LIMIT
) -> list[dict[str, Any]]:
    """Up to `limit` visible products of the channel with an id above `after_id`, by id."""
    params: dict[str, Any] = {
        "channel_id:in": channel_id,
        "is_visible": "true",
        "include": PRODUCT_INCLUDE,
        "sort": "id",
        "direction": "asc",
        "limit": limit,
        "page": 1,
    }
    if after_id:
        params["id:greater"] = after_id
    return _products(bc, params)


def product_pages(
    bc: BigCommerceClient, channel_id: int, after_id: int = 0, limit: int = PAGE_LIMIT
) -> Iterator[list[dict[str, Any]]]:
    """Every visible product of the channel, page by page, from the id after `after_id`."""
    while True:
        page = product_page(bc, channel_id, after_id, limit)
        if not page:
            return
        yield page
        if len(page) < limit:
            return
        after_id = max(int(p["id"]) for p in page)


def products_by_id(bc: BigCommerceClient, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The products (with variants, images and channels) that still exist among `ids`, visible or not."""
    found: dict[int, dict[str, Any]] = {}
    unique = sorted({int(i) for i in ids})
    for start in range(0, len(unique), PAGE_LIMIT):
        chunk = unique[start : start + PAGE_LIMIT]
        params = {"id:in": _csv(chunk), "include": PRODUCT_INCLUDE_BY_ID, "limit": PAGE_LIMIT}
        for item in _products(bc, params):
            found[int(item["id"])] = item
    return found


def channel_assignments(bc: BigCommerceClient, product_ids: Sequence[int]) -> dict[int, set[int]]:
    """product id -> the channels it is assigned to (products with none are absent)."""
    assigned: dict[int, set[int]] = {}
    unique = sorted({int(i) for i in product_ids})
    for start in range(0, len(unique), PAGE_LIMIT):
        params = {"product_id:in": _csv(unique[start : start + PAGE_LIMIT])}
        for row in V3Pages(bc, f"{PRODUCTS_PATH}/channel-assignments", params).items():
            assigned.setdefault(int(row["product_id"]), set()).add(int(row["channel_id"]))
    return assigned


@dataclass(frozen=True)
class Category:
    category_id: int
    name: str
    parent_id: int


def categories(bc: BigCommerceClient) -> dict[int, Category]:
    """Every category of every tree (a product's `categories` may name any of them)."""
    found: dict[int, Category] = {}
    for row in V3Pages(bc, "/v3/catalog/trees/categories").items():
        category_id = int(row.get("category_id") or row.get("id") or 0)
        if category_id:
            found[category_id] = Category(
                category_id, str(row.get("name") or ""), int(row.get("parent_id") or 0)
            )
    return found


def brands(bc: BigCommerceClient) -> dict[int, str]:
    return {int(row["id"]): str(row.get("name") or "") for row in V3Pages(bc, "/v3/catalog/brands").items()}


class CurrencyAssignment(AnswerModel):
    default_currency: str | None = opportunistic()


def default_currency(bc: BigCommerceClient, channel_id: int) -> str | None:
    """The channel's default currency code, or None when the channel has no assignment of its own."""
    path = f"/v3/channels/{int(channel_id)}/currency-assignments"
    body = bc.request("GET", path, answer=V3One[CurrencyAssignment]).data
    return None if body is None else body.data.default_currency
