"""How real time gets a store's two clients. `process_delivery` takes a `Clients`; the default one
builds the real clients, tests and benchmarks pass fakes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.bigcommerce.client import for_store as bigcommerce_for_store
from smbc.bigcommerce.limiter import get_limiter
from smbc.core.remote_calls import RemoteCallError
from smbc.db.models import Store
from smbc.engine.context import SalesmanagoPort
from smbc.salesmanago.client import SalesmanagoClient, SalesmanagoCredentials, record_calls_into

# A drain waits this long at most for its store's BigCommerce quota inside a worker thread; a longer
# wait gives its rows back until the window resets, so other stores' drains get the thread.
MAX_QUOTA_WAIT_S = 1.0


def real_bigcommerce(store: Store, calls: CallBuffer) -> BigCommerceClient:
    """The store's BigCommerce client; every call is recorded into `calls`."""
    return bigcommerce_for_store(
        store, recorder=calls, context=calls.context, max_quota_wait=MAX_QUOTA_WAIT_S
    )


def real_quota_wait(store_hash: str) -> float:
    """Seconds before real-time work may call the store's BigCommerce API, as the limiter knows."""
    return get_limiter().quota_wait(store_hash, "realtime")


def real_salesmanago(
    credentials: SalesmanagoCredentials | RemoteCallError, store: Store, calls: CallBuffer
) -> SalesmanagoPort:
    """The SALESmanago client of the store's account (its credentials as read for the batch, or the
    reason there are none, raised: the store is not connected)."""
    if isinstance(credentials, RemoteCallError):
        raise credentials
    return SalesmanagoClient(credentials, recorder=record_calls_into(calls, store.id), context=calls.context)


@dataclass(frozen=True)
class Clients:
    """Factories of the clients one batch of deliveries works with."""

    bigcommerce: Callable[[Store, CallBuffer], BigCommerceClient] = real_bigcommerce
    salesmanago: Callable[[SalesmanagoCredentials | RemoteCallError, Store, CallBuffer], SalesmanagoPort] = (
        real_salesmanago
    )
    quota_wait: Callable[[str], float] = real_quota_wait


REAL_CLIENTS = Clients()
