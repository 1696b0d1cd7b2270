"""Products (created, updated, deleted, stock changed) -> each storefront's SALESmanago catalog.

A burst of deliveries about one product is coalesced by processing into one delivery, whose product
is read once (variants, images and channels in one call) and upserted once per storefront catalog.
A stock change of a product already in the catalog, with its availability unchanged, goes through
`updateQuantity`. A product deleted, hidden or taken off a storefront is marked unavailable there."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from smbc.account.catalog_access import NoCatalogKey, catalog_api
from smbc.account.credentials import storefronts
from smbc.bigcommerce import catalog as bc_catalog
from smbc.bigcommerce.client import BigCommerceClient
from smbc.core.clock import get_clock
from smbc.core.remote_calls import Outcome, RemoteCallError, Service
from smbc.engine.context import Context, Result
from smbc.mapping.catalog_products import (
    CatalogCategory,
    CurrencyNotInStore,
    StorefrontCatalog,
    catalog_products,
    price_conversion,
    quantity_update,
    remembered,
    unavailable,
)
from smbc.realtime import catalog_ledger as ledger
from smbc.realtime.handlers import Delivery, current_resource
from smbc.salesmanago.catalog import CatalogApi, CatalogGone, ProductsWritten
from smbc.salesmanago.client import record_calls_into

STOCK_SCOPES = frozenset(
    {
        "store/product/inventory/updated",
        "store/product/inventory/order/updated",
        "store/sku/inventory/updated",
        "store/sku/inventory/order/updated",
    }
)
NAMES_TTL_S = 600.0  # categories and brands are read at most this often per store, not per delivery
_names: dict[str, tuple[float, dict[int, CatalogCategory], dict[int, str]]] = {}
# Per store: when read, each catalog's currency (catalogList) and the store's rates, kept as long as names.
_currencies: dict[str, tuple[float, dict[str, str], list[bc_catalog.StoreCurrency]]] = {}


@dataclass(frozen=True)
class _Target:
    channel_id: int
    catalog_id: str
    storefront: StorefrontCatalog
    refused: str = ""  # why nothing may be sent there (a currency the store lacks)


def _category_and_brand_names(bc: BigCommerceClient) -> tuple[dict[int, CatalogCategory], dict[int, str]]:
    now = get_clock().monotonic()
    cached = _names.get(bc.store_hash)
    if cached is not None and now - cached[0] < NAMES_TTL_S:
        return cached[1], cached[2]
    categories = {
        c.category_id: CatalogCategory(c.name, c.parent_id) for c in bc_catalog.categories(bc).values()
    }
    brands = bc_catalog.brands(bc)
    _names[bc.store_hash] = (now, categories, brands)
    return categories, brands


def _catalog_currencies(
    bc: BigCommerceClient, api: CatalogApi, catalog_ids: set[str]
) -> tuple[dict[str, str], list[bc_catalog.StoreCurrency]]:
    now = get_clock().monotonic()
    cached = _currencies.get(bc.store_hash)
    if cached is not None and now - cached[0] < NAMES_TTL_S and catalog_ids <= set(cached[1]):
        return cached[1], cached[2]
    by_catalog = {c.catalog_id: c.currency for c in api.catalogs()}
    rates = bc_catalog.currencies(bc)
    _currencies[bc.store_hash] = (now, by_catalog, rates)
    return by_catalog, rates


def _catalogs(ctx: Context) -> tuple[CatalogApi, dict[int, str]] | Result:
    """The catalog client and the storefronts (channel -> catalog id) to write, or why there are none."""
    catalogs = {int(c): str(cid) for c, cid in getattr(ctx.settings, "catalogs", {}).items() if cid}
    if not catalogs:
        return Result.skipped("no storefront has a product catalog")
    with ctx.db.session() as session:
        paused = {c for c, cid in catalogs.items() if ledger.paused_message(session, ctx.store.id, c, cid)}
        try:
            recorder = record_calls_into(ctx.calls, ctx.store.id)
            api = catalog_api(session, ctx.store, recorder=recorder, context=ctx.calls.context)
        except NoCatalogKey as exc:
            return Result.skipped(str(exc))
    active = {c: cid for c, cid in catalogs.items() if c not in paused}
    if not active:
        return Result.skipped("catalog sync paused: the catalog was deleted in SALESmanago")
    return api, active


def _targets(
    ctx: Context, bc: BigCommerceClient, api: CatalogApi, catalogs: Mapping[int, str]
) -> list[_Target]:
    categories, brands = _category_and_brand_names(bc)
    currencies, rates = _catalog_currencies(bc, api, set(catalogs.values()))
    sites = {s.channel_id: s.url for s in storefronts(ctx.store)}
    identifier = str(getattr(ctx.settings, "product_identifier", "id"))
    targets = []
    for channel, catalog_id in sorted(catalogs.items()):
        storefront = StorefrontCatalog(sites.get(channel, ""), identifier, categories, brands)
        refused = ""
        if catalog_id in currencies:  # one not listed: its upsert finds it gone and pauses it
            try:
                prices = price_conversion(currencies[catalog_id], rates)
                storefront = StorefrontCatalog(storefront.site_url, identifier, categories, brands, prices)
            except CurrencyNotInStore as exc:
                refused = str(exc)
        targets.append(_Target(channel, catalog_id, storefront, refused))
    return targets


def handle_product(ctx: Context, delivery: Delivery) -> Result:
    found = _catalogs(ctx)
    if isinstance(found, Result):
        return found
    api, catalogs = found
    product_id, product = current_resource(ctx, "product", delivery, _read_one(ctx.bc))
    if product is None:
        return _mark_unavailable(ctx, api, catalogs, product_id, "deleted")
    written = ProductsWritten()
    notes: list[str] = []
    try:
        channels = _channels(ctx.bc, product)
        for target in _targets(ctx, ctx.bc, api, catalogs):
            if target.refused:
                notes.append(f"storefront {target.channel_id}: nothing sent, {target.refused}")
                continue
            shown = bool(product.get("is_visible", True)) and target.channel_id in channels
            items = catalog_products(product, target.storefront) if shown else []
            written.add(_send(ctx, api, target, product_id, items, stock_only=delivery.scope in STOCK_SCOPES))
            notes.append(f"storefront {target.channel_id}: {len(items)} product(s)")
    except CatalogGone as exc:
        return _catalog_gone(ctx, api, exc)
    except RemoteCallError as exc:
        return _v3_refused(exc)
    return _result(written, "; ".join(notes))


def handle_product_deleted(ctx: Context, delivery: Delivery) -> Result:
    found = _catalogs(ctx)
    if isinstance(found, Result):
        return found
    api, catalogs = found
    return _mark_unavailable(ctx, api, catalogs, int(delivery.resource_id or 0), "deleted")


def _read_one(bc: BigCommerceClient) -> Any:
    def read(product_id: int) -> dict[str, Any] | None:
        return bc_catalog.products_by_id(bc, [product_id]).get(product_id)

    return read


def _channels(bc: BigCommerceClient, product: Mapping[str, Any]) -> set[int]:
    """The product's storefronts: from the read (`include=channels`), else asked for, so that an
    answer without them never takes the product off every storefront."""
    if isinstance(product.get("channels"), list):
        return {int(c) for c in product["channels"]}
    product_id = int(product["id"])
    return bc_catalog.channel_assignments(bc, [product_id]).get(product_id, set())


def _send(
    ctx: Context,
    api: CatalogApi,
    target: _Target,
    product_id: int,
    items: Sequence[dict[str, Any]],
    *,
    stock_only: bool,
) -> ProductsWritten:
    """Send the product's items to one storefront's catalog; what the ledger has of it and the items
    no longer name (a variant removed, the product taken off the storefront) goes as unavailable."""
    with ctx.db.session() as session:
        known = {
            row.product_key: (row.available, dict(row.last_sent or {}))
            for row in ledger.products_of(
                session, ctx.store.id, target.channel_id, target.catalog_id, [product_id]
            )
        }
    keys = {str(i["productId"]) for i in items}
    stale = [
        unavailable(sent or {"productId": key})
        for key, (available, sent) in known.items()
        if available and key not in keys
    ]
    same_availability = all(
        str(i["productId"]) in known and known[str(i["productId"])][0] == i["available"] for i in items
    )
    if stock_only and items and same_availability and not stale:
        written = api.update_quantity(target.catalog_id, [quantity_update(i) for i in items])
    else:
        written = (
            api.upsert_products(target.catalog_id, [*items, *stale]) if items or stale else ProductsWritten()
        )
    accepted = [
        (product_id, remembered(i)) for i in [*items, *stale] if str(i["productId"]) not in written.refused
    ]
    with ctx.db.session() as session:
        ledger.record_sent(session, ctx.store.id, target.channel_id, target.catalog_id, accepted)
    return written


def _mark_unavailable(
    ctx: Context, api: CatalogApi, catalogs: Mapping[int, str], product_id: int, why: str
) -> Result:
    written = ProductsWritten()
    try:
        for channel_id, catalog_id in sorted(catalogs.items()):
            with ctx.db.session() as session:
                rows = ledger.products_of(session, ctx.store.id, channel_id, catalog_id, [product_id])
                gone = [
                    unavailable(row.last_sent or {"productId": row.product_key})
                    for row in rows
                    if row.available
                ]
            if not gone:
                continue
            sent = api.upsert_products(catalog_id, gone)
            written.add(sent)
            accepted = [(product_id, remembered(i)) for i in gone if str(i["productId"]) not in sent.refused]
            with ctx.db.session() as session:
                ledger.record_sent(session, ctx.store.id, channel_id, catalog_id, accepted)
    except CatalogGone as exc:
        return _catalog_gone(ctx, api, exc)
    except RemoteCallError as exc:
        return _v3_refused(exc)
    return _result(written, f"product {why}: marked unavailable")


def _result(written: ProductsWritten, note: str) -> Result:
    if written.refused:
        reasons = "; ".join(f"{key}: {reason}" for key, reason in sorted(written.refused.items()))
        if not written.sent:
            return Result.failed("SALESmanago refused the product", reasons)
        return Result.done(f"{written.sent} sent, {len(written.refused)} refused ({reasons})")
    return Result.done(f"{written.sent} sent to the catalog ({note})")


def _v3_refused(exc: RemoteCallError) -> Result:
    """A refused v3 key concerns the catalog only: the store's contacts and events keep flowing."""
    if exc.outcome is Outcome.CREDENTIALS and exc.service is Service.SALESMANAGO:
        return Result.failed(
            "SALESmanago refused the API v3 key: log in again under Account Settings", exc.message
        )
    raise exc


def _catalog_gone(ctx: Context, api: CatalogApi, exc: CatalogGone) -> Result:
    """Pause the storefronts whose catalog SALESmanago no longer lists (checked, not guessed)."""
    listed = {c.catalog_id for c in api.catalogs()}
    catalogs = {int(c): str(cid) for c, cid in getattr(ctx.settings, "catalogs", {}).items() if cid}
    gone = {c: cid for c, cid in catalogs.items() if cid not in listed}
    if not gone:
        return Result.failed("SALESmanago refused the product", exc.message)
    with ctx.db.session() as session:
        for channel_id, catalog_id in gone.items():
            message = ledger.gone_catalog_message(catalog_id)
            ledger.pause_catalog(session, ctx.store.id, channel_id, catalog_id, message)
    return Result.skipped("catalog sync paused: the catalog was deleted in SALESmanago")
