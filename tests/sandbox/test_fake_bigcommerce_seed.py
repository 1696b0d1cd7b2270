from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from fake_bc_harness import Harness, fake_bc_servers, harness_fixture  # noqa: F401

from smbc.sandbox.bigcommerce import FakeBigCommerce


@pytest.fixture
def fakes() -> Iterator[list[FakeBigCommerce]]:
    made = [
        FakeBigCommerce(client_id="c", client_secret="seed-test-secret-long-enough-for-hs256")
        for _ in range(3)
    ]
    yield made
    for bc in made:
        bc.close()


def snapshot(bc: FakeBigCommerce) -> tuple:
    store = bc.store(bc.default_store_hash)
    return (
        [(c.id, c.email, c.date_created) for c in store.customers.values()],
        [(s.email, tuple(s.consents)) for s in store.subscribers.values()],
        [
            (o.id, o.customer_id, o.status_id, o.total, o.date_created, len(o.lines))
            for o in store.orders.values()
        ],
    )


def test_seed_is_deterministic_and_inside_the_date_range(fakes: list[FakeBigCommerce]) -> None:
    start, end = date(2024, 2, 1), date(2024, 2, 29)
    for bc, seed in zip(fakes, (7, 7, 8), strict=True):
        counts = bc.seed(bc.default_store_hash, customers=500, orders=800, start=start, end=end, seed=seed)
        assert counts == {"customers": 500, "subscribers": 500, "orders": 800}
    assert snapshot(fakes[0]) == snapshot(fakes[1])
    assert snapshot(fakes[0]) != snapshot(fakes[2])
    store = fakes[0].store(fakes[0].default_store_hash)
    low, high = datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    assert all(low <= c.date_created <= c.date_modified <= high for c in store.customers.values())
    assert all(low <= o.date_created <= o.date_modified <= high for o in store.orders.values())
    orders = list(store.orders.values())
    assert [o.id for o in orders] == list(range(100, 900))
    assert all(a.date_created <= b.date_created for a, b in itertools.pairwise(orders))
    assert len({c.email for c in store.customers.values()}) == 500
    opted_in = sum(1 for s in store.subscribers.values() if s.consents)
    assert 200 < opted_in < 400
    guests = sum(1 for o in orders if o.customer_id == 0)
    assert 80 < guests < 250
    assert all(o.billing["email"] for o in orders)


def test_cached_lists_follow_changes(harness: Harness) -> None:
    h = harness
    h.bc.seed(h.store_hash, customers=60, orders=0, start=date(2025, 1, 1), end=date(2025, 1, 31))
    token = h.install()
    with h.api(token) as api:
        first = api.get("/v3/customers", params={"limit": 50}).json()
        assert first["meta"]["pagination"]["total"] == 60
        h.bc.storefront(h.store_hash).register("late@shop.test", "La", "Te")
        again = api.get(
            "/v3/customers", params={"limit": 50, "after": first["meta"]["cursor_pagination"]["end_cursor"]}
        )
        assert [c["id"] for c in again.json()["data"]] == list(range(51, 62))
        assert api.get("/v3/customers", params={"limit": 50}).json()["meta"]["pagination"]["total"] == 61
