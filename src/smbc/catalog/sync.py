"""Running a full catalog sync: a worker takes the row's lease, reads the channel's visible products
250 at a time (variants and images in the same call), sends them 100 at a time and saves the cursor
(the last product id) in the transaction that records the page's result, so a killed sync resumes
where it stopped. Then products sent before and not seen now go as unavailable.

The BigCommerce client runs at export priority on the store's shared limiter, so a sync takes its
share of the store's quota and real time keeps its own. Retry schedule and outcome -> action are the
engine's; a catalog SALESmanago no longer has pauses that storefront's catalog sync (no retries)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from smbc.account.catalog_access import NoCatalogKey, catalog_api
from smbc.account.credentials import storefronts
from smbc.bigcommerce import catalog as bc_catalog
from smbc.bigcommerce.client import PAGE_LIMIT, BigCommerceClient
from smbc.bigcommerce.client import for_store as bc_for_store
from smbc.catalog.models import ACTIVE_STATUSES, CatalogSync, SyncPhase, SyncStatus
from smbc.core.clock import utcnow
from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.long_jobs import LongJobKind, beat, finish_row
from smbc.engine.queue import RetryPolicy
from smbc.engine.read_ahead import ReadAhead
from smbc.engine.sliced_runs import TIME_SLICE_S, Lease, Step, run_sliced
from smbc.mapping.catalog_products import (
    CatalogCategory,
    CurrencyNotInStore,
    PriceConversion,
    StorefrontCatalog,
    catalog_products,
    price_conversion,
    remembered,
    unavailable,
)
from smbc.realtime import catalog_ledger as ledger
from smbc.salesmanago.catalog import MAX_PRODUCTS_PER_CALL, CatalogApi, CatalogGone, ProductsWritten
from smbc.salesmanago.client import record_calls_into
from smbc.settings.store_settings import load_store_settings

SYNC_RETRY = RetryPolicy(
    base=timedelta(seconds=5), cap=timedelta(minutes=10), give_up_after=timedelta(hours=24)
)
REFUSED_KEPT = 20  # refused products listed with their reason (all are counted)
# A page's upserts in flight at once (a page of 250 products makes 3 calls of 100). UNCONFIRMED:
# SALESmanago publishes no rate limit (real time's workers call it in parallel); 429/503 back off.
CALLS_AT_ONCE = 3


@dataclass
class Run:
    """One run of one sync: its lease, the storefront, its clients and the row's cursor."""

    lease: Lease[CatalogSync]
    store_id: int
    channel_id: int
    catalog_id: str
    storefront: StorefrontCatalog
    bc: BigCommerceClient
    api: CatalogApi
    phase: SyncPhase
    after_id: int  # saved: every product up to it is in the catalog
    on_page: Callable[[CatalogSync], None] | None = None
    read_after: int = 0  # read: the last product id of the last page read
    # The pages, the next one read while this one is mapped and sent (started at the first page).
    pages: Iterator[list[dict[str, Any]]] | None = None
    # Items read and not sent yet (calls go out full, 100 products at a time), and their products.
    waiting_items: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    waiting_products: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.read_after = max(self.read_after, self.after_id)

    @property
    def sync_id(self) -> int:
        return self.lease.row_id


def finish_sync(session: Session, row: CatalogSync, status: SyncStatus, error: str = "") -> None:
    finish_row(row, status.value, utcnow(), error)


SYNCS = LongJobKind(
    CatalogSync,
    "catalog sync",
    [s.value for s in ACTIVE_STATUSES],
    SYNC_RETRY,
    fail=lambda session, row, message: finish_sync(session, row, SyncStatus.FAILED, message),
    salesmanago_credentials="the API v3 key",
    start_again="sync again",
)


def run_sync(
    sync_id: int,
    *,
    db: Database | None = None,
    time_slice: float | None = TIME_SLICE_S,
    on_page: Callable[[CatalogSync], None] | None = None,
    force: bool = False,
) -> str | None:
    """Run a sync's pages until it ends, must wait for a retry, or its time slice is used up (then it
    is queued again). Returns the status left, or None when another worker holds it (or it is not
    due). `force` ignores a scheduled retry time (the CLI runs it now)."""
    return run_sliced(
        SYNCS,
        db or get_runtime().db,
        sync_id,
        lambda lease: _start(lease, on_page),
        calls_context="catalog",
        requeue=enqueue_sync,
        time_slice=time_slice,
        force=force,
    )


def _start(lease: Lease[CatalogSync], on_page: Callable[[CatalogSync], None] | None) -> Step | str:
    """The step of a leased sync (one page), or the status it ended with (uninstalled, no key, paused,
    a currency the store lacks) or waits for a retry with."""
    run = lease.opened(lambda session, row, store: _open(lease, session, row, store, on_page))
    if isinstance(run, str):
        return run
    try:
        categories = {
            c.category_id: CatalogCategory(c.name, c.parent_id)
            for c in bc_catalog.categories(run.bc).values()
        }
        brands = bc_catalog.brands(run.bc)
        prices = _price_conversion(run.bc, run.api, run.catalog_id)
    except RemoteCallError as exc:
        return lease.retry_or_fail(exc)
    except CurrencyNotInStore as exc:
        return _refuse_currency(lease, str(exc))
    run.storefront = replace(run.storefront, categories=categories, brands=brands, prices=prices)
    return lambda: _step(run)


def _open(
    lease: Lease[CatalogSync],
    session: Session,
    row: CatalogSync,
    store: Store,
    on_page: Callable[[CatalogSync], None] | None,
) -> Run | str:
    """The run of a sync whose store is installed, or the status it ended with (paused, no key)."""
    paused = ledger.paused_message(session, row.store_id, row.channel_id, row.catalog_id)
    if paused:
        finish_sync(session, row, SyncStatus.FAILED, paused)
        return SyncStatus.FAILED.value
    settings = load_store_settings(session, row.store_id)
    calls = lease.calls
    try:
        api = catalog_api(session, store, recorder=record_calls_into(calls, store.id), context=calls.context)
        bc = bc_for_store(store, recorder=calls, priority="export", context=calls.context)
    except NoCatalogKey as exc:
        finish_sync(session, row, SyncStatus.FAILED, str(exc))
        return SyncStatus.FAILED.value
    site = next((s.url for s in storefronts(store) if s.channel_id == row.channel_id), None)
    fallback_site = storefronts(store)[0].url
    return Run(
        lease,
        store_id=row.store_id,
        channel_id=row.channel_id,
        catalog_id=row.catalog_id,
        storefront=StorefrontCatalog(site or fallback_site, settings.product_identifier),
        bc=bc,
        api=api,
        phase=SyncPhase(row.phase),
        after_id=row.after_id,
        on_page=on_page,
    )


def _price_conversion(bc: BigCommerceClient, api: CatalogApi, catalog_id: str) -> PriceConversion:
    """The catalog's currency (from catalogList) and the store's rates, read once per run. A catalog
    not listed keeps the store's prices: its first upsert finds it gone and pauses the storefront."""
    catalog = next((c for c in api.catalogs() if c.catalog_id == catalog_id), None)
    if catalog is None:
        return PriceConversion()
    return price_conversion(catalog.currency, bc_catalog.currencies(bc))


def _refuse_currency(lease: Lease[CatalogSync], message: str) -> str:
    """No price may go in the wrong currency: the sync stops with the reason (the tab and the CLI
    show it) until the merchant enables the currency in BigCommerce or picks another catalog."""
    with lease.db.session() as session:
        row = lease.locked(session)
        lease.calls.flush(session)
        finish_sync(session, row, SyncStatus.FAILED, message)
    return SyncStatus.FAILED.value


def _step(run: Run) -> str | None:
    """One page of products (or of products gone); the status the sync ended with, or None."""
    try:
        more = _products_page(run) if run.phase is SyncPhase.PRODUCTS else _gone_batch(run)
    except CatalogGone as exc:
        return _catalog_gone(run, exc)
    if not more and run.phase is SyncPhase.GONE:
        return _end(run)
    if not more:
        run.phase = SyncPhase.GONE
    return None


def send_items(api: CatalogApi, catalog_id: str, items: Sequence[Mapping[str, Any]]) -> ProductsWritten:
    """Upsert 100 at a time, a page's calls at once (they are independent: each product is in one);
    a call SALESmanago refuses as a whole counts its products as refused with the reason, and the
    other calls go on. The first other error, in the calls' order, is raised once all have ended (the
    page is sent again from the cursor; upserts are idempotent)."""
    chunks = [
        list(items[start : start + MAX_PRODUCTS_PER_CALL])
        for start in range(0, len(items), MAX_PRODUCTS_PER_CALL)
    ]

    def send(chunk: list[Mapping[str, Any]]) -> ProductsWritten:
        try:
            return api.upsert_products(catalog_id, chunk)
        except CatalogGone:
            raise
        except RemoteCallError as exc:
            if exc.outcome is not Outcome.INVALID:
                raise
            return ProductsWritten(refused={str(i["productId"]): exc.message for i in chunk})

    if len(chunks) < 2:
        answers = [send(chunk) for chunk in chunks]
    else:
        with ThreadPoolExecutor(min(len(chunks), CALLS_AT_ONCE), thread_name_prefix="catalog-send") as pool:
            futures = [pool.submit(send, chunk) for chunk in chunks]
        answers = [future.result() for future in futures]
    written = ProductsWritten()
    for answer in answers:
        written.add(answer)
    return written


def _products_page(run: Run) -> bool:
    """Read one page of products and send what fills whole calls of 100 (everything after the last
    page); the rest waits for the next page. The saved cursor is the last product whose every item
    went, so a product split between two calls is read again after a kill. False after the last page."""
    if run.pages is None:
        run.pages = iter(
            ReadAhead(bc_catalog.product_pages(run.bc, run.channel_id, run.read_after, PAGE_LIMIT))
        )
    page = next(run.pages, [])  # none: the last page was full, or the channel has no products
    last = len(page) < PAGE_LIMIT
    for product in page:
        product_id = int(product["id"])
        run.waiting_products.append(product_id)
        run.waiting_items.extend((product_id, item) for item in catalog_products(product, run.storefront))
    if page:
        run.read_after = max(int(p["id"]) for p in page)
    waiting = len(run.waiting_items)
    ready = waiting if last else waiting - waiting % MAX_PRODUCTS_PER_CALL
    items, run.waiting_items = run.waiting_items[:ready], run.waiting_items[ready:]
    first_waiting = run.waiting_items[0][0] if run.waiting_items else None
    done = [p for p in run.waiting_products if first_waiting is None or p < first_waiting]
    run.waiting_products = [
        p for p in run.waiting_products if first_waiting is not None and p >= first_waiting
    ]
    written = send_items(run.api, run.catalog_id, [item for _, item in items]) if items else ProductsWritten()
    accepted = [
        (pid, remembered(item)) for pid, item in items if str(item["productId"]) not in written.refused
    ]
    with run.lease.db.session() as session:
        row = run.lease.locked(session)
        ledger.record_sent(
            session, run.store_id, run.channel_id, run.catalog_id, accepted, seen_sync=run.sync_id
        )
        ledger.mark_keys_seen(session, run.store_id, run.channel_id, list(written.refused), run.sync_id)
        if done:
            run.after_id = max(done)
        row.after_id = run.after_id
        row.products_read += len(done)
        _count(row, written)
        if last:
            row.phase = SyncPhase.GONE.value
        _heartbeat(row)
        run.lease.calls.flush(session)
        if run.on_page is not None:
            run.on_page(row)
    return not last


def _gone_batch(run: Run) -> bool:
    """Send up to 100 products gone since the last sync as unavailable; False when none are left."""
    with run.lease.db.session() as session:
        rows = ledger.unseen_available(
            session, run.store_id, run.channel_id, run.catalog_id, run.sync_id, MAX_PRODUCTS_PER_CALL
        )
        gone = [
            (row.id, row.bc_product_id, unavailable(row.last_sent or {"productId": row.product_key}))
            for row in rows
        ]
    if not gone:
        return False
    written = send_items(run.api, run.catalog_id, [item for _, _, item in gone])
    with run.lease.db.session() as session:
        row = run.lease.locked(session)
        ledger.mark_seen(session, [row_id for row_id, _, _ in gone], run.sync_id, available=False)
        row.gone += written.sent
        _count(row, ProductsWritten(refused=written.refused, warnings=written.warnings))
        _heartbeat(row)
        run.lease.calls.flush(session)
        if run.on_page is not None:
            run.on_page(row)
    return True


def _count(row: CatalogSync, written: ProductsWritten) -> None:
    row.sent += written.sent
    row.failed += len(written.refused)
    if written.refused:
        row.reasons = dict(Counter(row.reasons or {}) + Counter(written.refused.values()))
        latest = [{"product_id": key, "reason": reason} for key, reason in written.refused.items()]
        row.refused = [*(row.refused or []), *latest][-REFUSED_KEPT:]


def _heartbeat(row: CatalogSync) -> None:
    beat(row)
    row.last_error = ""  # the sync's tab shows no error once it goes on


def _end(run: Run) -> str:
    with run.lease.db.session() as session:
        row = run.lease.locked(session)
        run.lease.calls.flush(session)
        finish_sync(session, row, SyncStatus.DONE)
    return SyncStatus.DONE.value


def _catalog_gone(run: Run, exc: CatalogGone) -> str:
    """SALESmanago does not know the catalog: if its list agrees, pause this storefront's catalog
    sync with a message the tab shows; otherwise it was some other refusal: the sync fails with it."""
    try:
        listed = {c.catalog_id for c in run.api.catalogs()}
    except RemoteCallError as listing_error:
        return run.lease.retry_or_fail(listing_error)
    with run.lease.db.session() as session:
        row = run.lease.locked(session)
        run.lease.calls.flush(session)
        if run.catalog_id in listed:
            finish_sync(session, row, SyncStatus.FAILED, exc.message)
            return SyncStatus.FAILED.value
        message = ledger.gone_catalog_message(run.catalog_id)
        ledger.pause_catalog(session, run.store_id, run.channel_id, run.catalog_id, message)
        finish_sync(session, row, SyncStatus.FAILED, message)
    return SyncStatus.FAILED.value


# -- the queue ---------------------------------------------------------------------------------------


enqueue_sync = SYNCS.queued("catalog_syncs", run_sync, task_name="run_sync_task")
