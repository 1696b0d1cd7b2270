"""`/v3/catalog/products` (filters, sorts, `include`, `include_fields`/`exclude_fields`, offset paging),
one product, its variants and images, `/v3/catalog/variants`, and the channel and category assignments.

Reads only: the merchant changes products in the control panel (`Admin`), which fires the product
webhooks. Filtered id lists are cached per store revision, so paging through 50,000 products made on
read builds each page's products only."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from smbc.sandbox.bigcommerce import listing
from smbc.sandbox.bigcommerce.api import ApiError
from smbc.sandbox.bigcommerce.listing import QueryError
from smbc.sandbox.bigcommerce.render import catalog
from smbc.sandbox.bigcommerce.rest.access import StoreCall, authorized
from smbc.sandbox.bigcommerce.rest.envelopes import pagination, v3_answer, v3_page
from smbc.sandbox.bigcommerce.state import Json, Product, StoreState

router = APIRouter()
Reader = Annotated[StoreCall, Depends(authorized("products"))]

INCLUDES = frozenset(
    {
        "bulk_pricing_rules",
        "channels",
        "custom_fields",
        "images",
        "modifiers",
        "options",
        "parent_relations",
        "primary_image",
        "reviews",
        "variants",
        "videos",
    }
)
SORTS: dict[str, Callable[[Product], Any]] = {
    "id": lambda p: p.id,
    "name": lambda p: (p.name.lower(), p.id),
    "sku": lambda p: (p.sku, p.id),
    "price": lambda p: (p.price, p.id),
    "date_modified": lambda p: (p.date_modified, p.id),
    "inventory_level": lambda p: (p.inventory_level, p.id),
    "is_visible": lambda p: (p.is_visible, p.id),
    "calculated_price": lambda p: (p.sale_price or p.price, p.id),
}
NOT_FILTERS = frozenset({"page", "limit", "include", "include_fields", "exclude_fields"})


def _bool(q: dict[str, str], name: str) -> bool | None:
    value = q.get(name)
    if value is None:
        return None
    if value.lower() not in ("true", "false", "1", "0"):
        raise QueryError(f"{name}: {value!r} is not a boolean")
    return value.lower() in ("true", "1")


def product_filter(q: dict[str, str]) -> Callable[[Product], bool]:
    """The product list's filters that a sync or a merchant tool uses (unknown parameters are ignored)."""
    ids = listing.int_set(q, "id")
    not_ids = listing.id_set(q, "id:not_in") or set()
    bounds = {
        op: listing.parse_int(q.get(f"id:{op}"), f"id:{op}") for op in ("min", "max", "greater", "less")
    }
    channels = listing.id_set(q, "channel_id:in")
    categories = listing.int_set(q, "categories")
    brand = listing.parse_int(q.get("brand_id"), "brand_id")
    sku_set = listing.str_set(q, "sku")
    name, keyword = q.get("name"), (q.get("keyword") or "").lower()
    visible = _bool(q, "is_visible")
    availability = q.get("availability")
    modified = listing.date_range(q, "date_modified")

    def wanted(p: Product) -> bool:
        return (
            (ids is None or p.id in ids)
            and p.id not in not_ids
            and (bounds["min"] is None or p.id >= bounds["min"])
            and (bounds["max"] is None or p.id <= bounds["max"])
            and (bounds["greater"] is None or p.id > bounds["greater"])
            and (bounds["less"] is None or p.id < bounds["less"])
            and (channels is None or not channels.isdisjoint(p.channel_ids))
            and (categories is None or not categories.isdisjoint(p.categories))
            and (brand is None or p.brand_id == brand)
            and (sku_set is None or p.sku in sku_set or any(v.sku in sku_set for v in p.variants))
            and (name is None or p.name == name)
            and (not keyword or keyword in p.name.lower() or keyword in p.sku.lower())
            and (visible is None or p.is_visible == visible)
            and (availability is None or p.availability == availability)
            and listing.in_range(p.date_modified, *modified)
        )

    return wanted


def products_of(store: StoreState, ids: list[int]) -> Iterator[Product]:
    for product_id in ids:
        product = store.product(product_id)
        if product is not None:
            yield product


ID_BOUNDS = ("id:min", "id:max", "id:greater", "id:less")


def matching_ids(store: StoreState, q: dict[str, str]) -> list[int]:
    """The ids of the products a list query matches, in its order (cached per revision and query)."""
    sort = q.get("sort") or "id"
    direction = q.get("direction") or "asc"
    if sort not in SORTS or direction not in ("asc", "desc"):
        raise QueryError(f"sort: {sort!r} {direction!r} is not supported")
    if sort == "id" and direction == "asc" and any(q.get(bound) for bound in ID_BOUNDS):
        # A keyset read (`id:greater` moving every page): the list without its id bounds is cached
        # once and cut by bisection, instead of every page filtering the whole catalog again.
        unbounded = matching_ids(store, {k: v for k, v in q.items() if k not in ID_BOUNDS})
        return within_id_bounds(unbounded, q)
    filters = listing.filter_key(q, NOT_FILTERS)
    wanted = product_filter(q)

    def build() -> list[int]:
        every = store.all_product_ids()
        if not filters:
            return every
        rows = [p for p in products_of(store, every) if wanted(p)]
        if sort != "id" or direction == "desc":
            rows.sort(key=SORTS[sort], reverse=direction == "desc")
        return [p.id for p in rows]

    return store.cached(("products", filters), build)


def within_id_bounds(ascending: list[int], q: dict[str, str]) -> list[int]:
    """The ids of an ascending list within the query's `id:min|max|greater|less`."""
    first, end = 0, len(ascending)
    low = listing.parse_int(q.get("id:min"), "id:min")
    above = listing.parse_int(q.get("id:greater"), "id:greater")
    high = listing.parse_int(q.get("id:max"), "id:max")
    below = listing.parse_int(q.get("id:less"), "id:less")
    if low is not None:
        first = max(first, bisect.bisect_left(ascending, low))
    if above is not None:
        first = max(first, bisect.bisect_right(ascending, above))
    if high is not None:
        end = min(end, bisect.bisect_right(ascending, high))
    if below is not None:
        end = min(end, bisect.bisect_left(ascending, below))
    return ascending[first:end]


def includes(q: dict[str, str]) -> frozenset[str]:
    wanted = frozenset(listing.included(q))
    unknown = wanted - INCLUDES
    if unknown:
        raise QueryError(f"include: {', '.join(sorted(unknown))} is not one of {', '.join(sorted(INCLUDES))}")
    return wanted


def product_renderer(call: StoreCall) -> Callable[[Product], Json]:
    """How this request renders a product: its `include`d sub-resources, then `include_fields` (keep only
    those, the id and the sub-resources) and `exclude_fields` (drop those)."""
    q = call.query
    sub_resources = includes(q)
    keep = listing.parse_str_list(q.get("include_fields"))
    drop = set(listing.parse_str_list(q.get("exclude_fields")) or [])
    drop.discard("id")
    base_url = call.fake.base_url

    def render(product: Product) -> Json:
        row = catalog.product_json(product, base_url, sub_resources)
        if keep is not None:
            row = {k: v for k, v in row.items() if k == "id" or k in keep or k in sub_resources}
        return {k: v for k, v in row.items() if k not in drop}

    return render


def existing_product(store: StoreState, product_id: int) -> Product:
    product = store.product(product_id)
    if product is None:
        raise ApiError(404, "The requested product was not found.")
    return product


@router.get("/stores/{store_hash}/v3/catalog/products")
async def list_products(call: Reader) -> JSONResponse:
    q = call.query
    page, limit = listing.page_and_limit(q)
    render = product_renderer(call)
    with call.lock:
        ids = matching_ids(call.store, q)
        chunk = listing.offset_page(ids, page, limit)
        data = [render(p) for p in products_of(call.store, chunk)]
    return v3_answer(data, {"pagination": pagination(len(ids), page, limit, len(data), q)})


def _assignments(
    call: StoreCall, pairs: Callable[[Product], list[tuple[int, int]]], key: str
) -> JSONResponse:
    """Channel or category assignments: one row per (product, other id), filtered by `product_id:in` and
    `<key>:in`."""
    q = call.query
    page, limit = listing.page_and_limit(q)
    products = listing.id_set(q, "product_id:in")
    others = listing.id_set(q, f"{key}:in")
    with call.lock:

        def build() -> list[tuple[int, int]]:
            ids = sorted(products) if products is not None else call.store.all_product_ids()
            return [
                pair
                for product in products_of(call.store, ids)
                for pair in pairs(product)
                if others is None or pair[1] in others
            ]

        rows = call.store.cached((f"{key}-assignments", listing.filter_key(q, NOT_FILTERS)), build)
        return v3_page(rows, page, limit, lambda pair: {"product_id": pair[0], key: pair[1]}, q)


@router.get("/stores/{store_hash}/v3/catalog/products/channel-assignments")
async def channel_assignments(call: Reader) -> JSONResponse:
    return _assignments(call, lambda p: [(p.id, c) for c in p.channel_ids], "channel_id")


@router.get("/stores/{store_hash}/v3/catalog/products/category-assignments")
async def category_assignments(call: Reader) -> JSONResponse:
    return _assignments(call, lambda p: [(p.id, c) for c in p.categories], "category_id")


@router.get("/stores/{store_hash}/v3/catalog/products/{product_id}")
async def get_product(call: Reader, product_id: int) -> JSONResponse:
    render = product_renderer(call)
    with call.lock:
        return v3_answer(render(existing_product(call.store, product_id)))


@router.get("/stores/{store_hash}/v3/catalog/products/{product_id}/variants")
async def list_product_variants(call: Reader, product_id: int) -> JSONResponse:
    page, limit = listing.page_and_limit(call.query)
    with call.lock:
        product = existing_product(call.store, product_id)
        return v3_page(product.variants, page, limit, lambda v: catalog.variant_json(product, v))


@router.get("/stores/{store_hash}/v3/catalog/products/{product_id}/variants/{variant_id}")
async def get_product_variant(call: Reader, product_id: int, variant_id: int) -> JSONResponse:
    with call.lock:
        product = existing_product(call.store, product_id)
        variant = product.variant(variant_id)
        if variant is None:
            raise ApiError(404, "The requested variant was not found.")
        return v3_answer(catalog.variant_json(product, variant))


@router.get("/stores/{store_hash}/v3/catalog/products/{product_id}/images")
async def list_product_images(call: Reader, product_id: int) -> JSONResponse:
    page, limit = listing.page_and_limit(call.query)
    with call.lock:
        product = existing_product(call.store, product_id)
        base_url = call.fake.base_url
        numbers = list(range(product.image_count))
        return v3_page(numbers, page, limit, lambda n: catalog.image_json(product, n, base_url))


@router.get("/stores/{store_hash}/v3/catalog/variants")
async def list_variants(call: Reader) -> JSONResponse:
    """Every product's variants, filtered by `id:in`, `product_id:in`, `sku`, `sku:in`."""
    q = call.query
    page, limit = listing.page_and_limit(q)
    variant_ids = listing.id_set(q, "id:in")
    product_ids = listing.id_set(q, "product_id:in")
    sku_set = listing.str_set(q, "sku")
    with call.lock:

        def build() -> list[tuple[int, int]]:
            ids = sorted(product_ids) if product_ids is not None else call.store.all_product_ids()
            return [
                (product.id, v.id)
                for product in products_of(call.store, ids)
                for v in product.variants
                if (variant_ids is None or v.id in variant_ids) and (sku_set is None or v.sku in sku_set)
            ]

        rows = call.store.cached(("variants", listing.filter_key(q, NOT_FILTERS)), build)

        def render(pair: tuple[int, int]) -> Json:
            product = existing_product(call.store, pair[0])
            variant = product.variant(pair[1])
            assert variant is not None  # the rows were built from this revision's products
            return catalog.variant_json(product, variant)

        return v3_page(rows, page, limit, render, q)
