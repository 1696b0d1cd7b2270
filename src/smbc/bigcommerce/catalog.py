"""Catalog reads on top of `BigCommerceClient`: products of a channel in pages of 250 with their
variants and images in the same call, products by id, channel assignments, categories, brands, and
a channel's default currency.

Product pages go by id (`id:greater`, ascending), so the last id of a page is a cursor a full sync
saves and resumes from.

Every answer is read through a model (`smbc.core.answers`): what identifies a row (a product's,
brand's or assignment's ids) is required, so an answer without it is an `invalid` outcome recorded
on the call; names, parents and the currency are opportunistic (a warning names the call and field).
A category row without any id is left out with a warning: the others still name the product's."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from smbc.bigcommerce.answers import NamedItem, V3List, as_dict
from smbc.bigcommerce.client import PAGE_LIMIT, BigCommerceClient, V3Pages
from smbc.core.answers import AnswerModel, opportunistic

PRODUCTS_PATH = "/v3/catalog/products"
PRODUCT_INCLUDE = "variants,images"
# Read by id (real time), a product also says which channels it is assigned to.
PRODUCT_INCLUDE_BY_ID = "variants,images,channels"
CATEGORIES_PATH = "/v3/catalog/trees/categories"
BRANDS_PATH = "/v3/catalog/brands"
CURRENCIES_PATH = "/v2/currencies"

log = logging.getLogger(__name__)


class CatalogProduct(AnswerModel):
    """A product as the catalog reads it: the id is required; the mapping reads the rest tolerantly
    (kept as it came)."""

    id: int


class ChannelAssignment(AnswerModel):
    """One row of `/v3/catalog/products/channel-assignments`."""

    product_id: int
    channel_id: int


class TreeCategory(AnswerModel):
    """One category of `/v3/catalog/trees/categories` (older answers name its id `id`)."""

    category_id: int | None = opportunistic(often_absent=True)
    id: int | None = opportunistic(often_absent=True)
    name: str | None = opportunistic()
    parent_id: int | None = opportunistic()


class Brand(NamedItem):
    """One brand of `/v3/catalog/brands`."""


class CurrencyAssignment(AnswerModel):
    default_currency: str | None = opportunistic()


class CurrencyAssignments(AnswerModel):
    """`/v3/channels/{id}/currency-assignments`: only a default for the catalog's currency, so an
    unreadable `data` falls back to the store's currency with a warning."""

    data: CurrencyAssignment | None = opportunistic()


class Currency(AnswerModel):
    """One row of `/v2/currencies`: the code and its rate against the store's default are required
    (a price cannot be converted without them); the rest is opportunistic."""

    currency_code: str
    currency_exchange_rate: Decimal
    is_default: bool = opportunistic(False)
    enabled: bool = opportunistic(True)
    decimal_places: int = opportunistic(2)


def _products(bc: BigCommerceClient, params: dict[str, Any]) -> list[CatalogProduct]:
    body = bc.request("GET", PRODUCTS_PATH, params, answer=V3List[CatalogProduct]).data
    return [] if body is None else body.data


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
    return [as_dict(product) for product in _products(bc, params)]


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
        after_id = max(p["id"] for p in page)  # required by `CatalogProduct`: an int in every item


def products_by_id(bc: BigCommerceClient, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The products (with variants, images and channels) that still exist among `ids`, visible or not."""
    found: dict[int, dict[str, Any]] = {}
    unique = sorted({int(i) for i in ids})
    for start in range(0, len(unique), PAGE_LIMIT):
        chunk = unique[start : start + PAGE_LIMIT]
        params = {"id:in": _csv(chunk), "include": PRODUCT_INCLUDE_BY_ID, "limit": PAGE_LIMIT}
        for product in _products(bc, params):
            found[product.id] = as_dict(product)
    return found


def channel_assignments(bc: BigCommerceClient, product_ids: Sequence[int]) -> dict[int, set[int]]:
    """product id -> the channels it is assigned to (products with none are absent)."""
    assigned: dict[int, set[int]] = {}
    unique = sorted({int(i) for i in product_ids})
    for start in range(0, len(unique), PAGE_LIMIT):
        params = {"product_id:in": _csv(unique[start : start + PAGE_LIMIT])}
        pages = V3Pages(bc, f"{PRODUCTS_PATH}/channel-assignments", params, item=ChannelAssignment)
        for row in pages.items():  # both ids are required by `ChannelAssignment`
            assigned.setdefault(row["product_id"], set()).add(row["channel_id"])
    return assigned


@dataclass(frozen=True)
class Category:
    category_id: int
    name: str
    parent_id: int


def categories(bc: BigCommerceClient) -> dict[int, Category]:
    """Every category of every tree (a product's `categories` may name any of them)."""
    found: dict[int, Category] = {}
    for row in V3Pages(bc, CATEGORIES_PATH, item=TreeCategory).items():
        category_id = row.get("category_id") or row.get("id")
        if not category_id:
            log.warning("GET %s: a category without an id ignored", CATEGORIES_PATH)
            continue
        found[category_id] = Category(category_id, row.get("name") or "", row.get("parent_id") or 0)
    return found


def brands(bc: BigCommerceClient) -> dict[int, str]:
    """brand id -> its name ("" when the answer has none)."""
    return {row["id"]: row.get("name") or "" for row in V3Pages(bc, BRANDS_PATH, item=Brand).items()}


def default_currency(bc: BigCommerceClient, channel_id: int) -> str | None:
    """The channel's default currency code, or None when the channel has no assignment of its own."""
    path = f"/v3/channels/{int(channel_id)}/currency-assignments"
    body = bc.request("GET", path, answer=CurrencyAssignments).data
    assignment = body.data if body is not None else None
    return assignment.default_currency if assignment is not None else None


@dataclass(frozen=True)
class StoreCurrency:
    code: str
    rate: Decimal  # units of this currency per unit of the store's default currency
    decimal_places: int
    is_default: bool
    enabled: bool


def currencies(bc: BigCommerceClient) -> list[StoreCurrency]:
    """The store's currencies (one call: BigCommerce answers the whole list unpaged)."""
    rows = bc.request("GET", CURRENCIES_PATH, answer=list[Currency]).data or []
    return [
        StoreCurrency(
            code=row.currency_code.strip().upper(),
            rate=row.currency_exchange_rate,
            decimal_places=row.decimal_places,
            is_default=row.is_default,
            enabled=row.enabled,
        )
        for row in rows
    ]
