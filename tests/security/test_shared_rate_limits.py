"""Rate limits that hold across processes (finding 7): the cart-link limit per client and store, and
the SALESmanago callback limit per store, are counted in the database (or Redis when the queue is
Redis), so two app instances sharing it share one budget; on SQLite + SQLite queue and on
PostgreSQL + Redis."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.rate_limit import Budget, RateLimiter, RedisCounters
from smbc.web import callbacks as callback_routes
from smbc.web.app import create_app
from smbc.web.storefront import CART_LINK_LIMIT

SHOP = "https://shop.example.com"
CART = "3f2504e0-4f89-41d3-9a0c-{:012d}"
SMCLIENT = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
CALLBACK_TOKEN = "callback-token-0123456789"


@pytest.fixture
def pinned_clock() -> Iterator[FakeClock]:
    """The window moves only when a test says so (no test straddles a minute)."""
    clock = FakeClock(datetime.now(UTC))
    previous = set_clock(clock)
    yield clock
    set_clock(previous)


@pytest.fixture
def two_apps(backend_settings: Settings, pinned_clock: FakeClock) -> Iterator[tuple[TestClient, TestClient]]:
    """Two instances of the app (as two web processes would be) on one database and one queue."""
    if not backend_settings.is_sqlite:
        database = Database(backend_settings.database_url)
        database.upgrade()
        database.dispose()
    with (
        TestClient(create_app(backend_settings, start_workers=False)) as first,
        TestClient(create_app(backend_settings, start_workers=False)) as second,
    ):
        with first.app.state.runtime.db.session() as s:
            s.add(
                Store(
                    hash="abc123",
                    status="installed",
                    access_token="t",
                    callback_secret=CALLBACK_TOKEN,
                    channels=[{"id": 1, "type": "storefront", "status": "active"}],
                    sites=[{"id": 1000, "channel_id": 1, "url": SHOP}],
                    info={},
                )
            )
        assert first.app.state.runtime.db is not second.app.state.runtime.db
        yield first, second


def cart_link(client: TestClient, number: int) -> int:
    response = client.post(
        "/storefront/cart-link?store=abc123",
        json={"store": "abc123", "channel_id": 1, "cart_id": CART.format(number), "smclient": SMCLIENT},
        headers={"Origin": SHOP},
    )
    return response.status_code


def test_two_app_instances_share_the_cart_link_budget(two_apps: tuple[TestClient, TestClient]) -> None:
    first, second = two_apps
    half = CART_LINK_LIMIT // 2
    assert [cart_link(first, i) for i in range(half)] == [200] * half
    rest = CART_LINK_LIMIT - half
    assert [cart_link(second, half + i) for i in range(rest)] == [200] * rest
    assert cart_link(first, 100) == 429
    assert cart_link(second, 101) == 429


def callback(client: TestClient, token: str = CALLBACK_TOKEN) -> int:
    params = {"email": "ann@example.com", "store": "abc123", "token": token}
    return client.get("/callbacks/salesmanago/opt-out", params=params).status_code


def test_two_app_instances_share_the_callback_budget_of_a_store(
    two_apps: tuple[TestClient, TestClient], pinned_clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(callback_routes, "CALLBACK_BUDGET", Budget("sm-callback", 4, 60))
    first, second = two_apps
    # Without the token nothing counts: nobody can use up the store's budget.
    assert {callback(first, "wrong") for _ in range(10)} == {403}
    assert [callback(first), callback(second), callback(first), callback(second)] == [200] * 4
    assert callback(first) == 429 and callback(second) == 429
    limited = second.get(
        "/callbacks/salesmanago/opt-in",
        params={"email": "a@b.co", "store": "abc123", "token": CALLBACK_TOKEN},
    )
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["success"] is False
    pinned_clock.advance(61)
    assert callback(second) == 200


def test_redis_counters_of_two_clients_share_one_budget(redis_url: str, pinned_clock: FakeClock) -> None:
    """Two processes each hold their own Redis client: the count is Redis's, not theirs."""
    prefix = f"smbctest-rl-{datetime.now(UTC).timestamp()}"
    budget = Budget("cart-link", 3, 60)
    one, two = RedisCounters(redis_url, prefix), RedisCounters(redis_url, prefix)
    try:
        first, second = RateLimiter(budget, one), RateLimiter(budget, two)
        assert [first.allow(("10.0.0.1", "abc"))[0], second.allow(("10.0.0.1", "abc"))[0]] == [True, True]
        assert first.allow(("10.0.0.1", "abc"))[0]
        assert not second.allow(("10.0.0.1", "abc"))[0]
        assert second.allow(("10.0.0.2", "abc"))[0]
    finally:
        keys = list(one._redis.scan_iter(f"{prefix}:*"))
        if keys:
            one._redis.delete(*keys)
        one.close()
        two.close()


def test_no_limiter_lives_in_process_memory(backend_settings: Settings) -> None:
    """The limiter is built on shared counters: a store row limits what every process sees."""
    with TestClient(create_app(backend_settings, start_workers=False)) as client:
        assert cart_link(client, 1) in (403, 404)  # no store: refused, but counted through shared counters
        limiter = client.app.state.cart_link_limiter
        assert isinstance(limiter, RateLimiter)
        with client.app.state.runtime.db.session() as s:
            assert s.scalar(select(Store.id)) is None
