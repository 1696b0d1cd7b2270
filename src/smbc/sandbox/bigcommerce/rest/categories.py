"""`/v3/catalog/categories`, `/v3/catalog/trees` (the category tree of each channel, its categories and
their nesting) and `/v3/catalog/brands`: reads only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from smbc.sandbox.bigcommerce import listing
from smbc.sandbox.bigcommerce.render import catalog
from smbc.sandbox.bigcommerce.rest.access import StoreCall, authorized, found
from smbc.sandbox.bigcommerce.rest.envelopes import v3_answer, v3_page
from smbc.sandbox.bigcommerce.state import Category, Json, StoreState

router = APIRouter()
Reader = Annotated[StoreCall, Depends(authorized("products"))]


@router.get("/stores/{store_hash}/v3/catalog/categories")
async def list_categories(call: Reader) -> JSONResponse:
    q = call.query
    page, limit = listing.page_and_limit(q)
    parent = listing.parse_int(q.get("parent_id"), "parent_id")
    with call.lock:
        rows = listing.kept_in(q, "parent_id", listing.kept_in(q, "id", call.store.categories.values()))
        rows = [
            c for c in rows if (parent is None or c.parent_id == parent) and q.get("name") in (None, c.name)
        ]
        return v3_page(rows, page, limit, catalog.category_json, q)


@router.get("/stores/{store_hash}/v3/catalog/categories/{category_id}")
async def get_category(call: Reader, category_id: int) -> JSONResponse:
    with call.lock:
        category = found(call.store.categories, category_id, "The requested category was not found.")
        return v3_answer(catalog.category_json(category))


@router.get("/stores/{store_hash}/v3/catalog/trees")
async def list_trees(call: Reader) -> JSONResponse:
    q = call.query
    page, limit = listing.page_and_limit(q)
    channels = listing.id_set(q, "channel_id:in")
    with call.lock:
        rows = listing.kept_in(q, "id", call.store.category_trees.values())
        rows = [t for t in rows if channels is None or not channels.isdisjoint(t.channel_ids)]
        return v3_page(
            rows, page, limit, lambda t: {"id": t.id, "name": t.name, "channels": t.channel_ids}, q
        )


@router.get("/stores/{store_hash}/v3/catalog/trees/categories")
async def list_tree_categories(call: Reader) -> JSONResponse:
    q = call.query
    page, limit = listing.page_and_limit(q)
    with call.lock:
        rows = listing.kept_in(q, "id", call.store.categories.values(), name="category_id:in")
        for field in ("tree_id", "parent_id"):
            rows = listing.kept_in(q, field, rows)
        return v3_page(rows, page, limit, catalog.tree_category_json, q)


def _node(store: StoreState, category: Category, path: list[int], depth: int | None) -> Json:
    here = [*path, category.id]
    children = [c for c in store.categories.values() if c.parent_id == category.id]
    deeper = depth is None or len(here) < depth
    return {
        "id": category.id,
        "parent_id": category.parent_id,
        "depth": len(here),
        "path": path,
        "name": category.name,
        "is_visible": category.is_visible,
        "url": category.custom_url,
        "children": [_node(store, c, here, depth) for c in children] if deeper else [],
    }


@router.get("/stores/{store_hash}/v3/catalog/trees/{tree_id}/categories")
async def tree_nodes(call: Reader, tree_id: int) -> JSONResponse:
    depth = listing.parse_int(call.query.get("depth"), "depth", minimum=1)
    with call.lock:
        found(call.store.category_trees, tree_id, "The requested category tree was not found.")
        roots = [c for c in call.store.categories.values() if c.tree_id == tree_id and c.parent_id == 0]
        return v3_answer([_node(call.store, c, [], depth) for c in roots])


@router.get("/stores/{store_hash}/v3/catalog/brands")
async def list_brands(call: Reader) -> JSONResponse:
    q = call.query
    page, limit = listing.page_and_limit(q)
    with call.lock:
        rows = listing.kept_in(q, "id", call.store.brands.values())
        rows = [b for b in rows if q.get("name") in (None, b.name)]
        return v3_page(rows, page, limit, catalog.brand_json, q)


@router.get("/stores/{store_hash}/v3/catalog/brands/{brand_id}")
async def get_brand(call: Reader, brand_id: int) -> JSONResponse:
    with call.lock:
        return v3_answer(
            catalog.brand_json(found(call.store.brands, brand_id, "The requested brand was not found."))
        )
