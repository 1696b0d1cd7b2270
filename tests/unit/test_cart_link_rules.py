"""What a cart-link request must look like, where it may come from, and how often."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.rate_limit import Budget, DatabaseCounters, RateCounter, RateLimiter
from smbc.realtime.cart_links import CartLinkError, origin_of, parse_cart_link, storefront_origins

CART = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
CONTACT = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def body(**changes: Any) -> dict[str, Any]:
    return {"store": "abc123", "channel_id": 1, "cart_id": CART, "smclient": CONTACT, **changes}


def test_a_well_formed_request_is_read() -> None:
    link = parse_cart_link(body(cart_id=CART.upper()))
    assert (link.store, link.channel_id, link.cart_id, link.smclient) == ("abc123", 1, CART, CONTACT)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"store": ""}, "store"),
        ({"store": "a/b"}, "store"),
        ({"store": 5}, "store"),
        ({"channel_id": "1"}, "channel_id"),
        ({"channel_id": 0}, "channel_id"),
        ({"channel_id": True}, "channel_id"),
        ({"channel_id": 2**40}, "channel_id"),
        ({"cart_id": "not-a-uuid"}, "cart_id"),
        ({"cart_id": CART + "0"}, "cart_id"),
        ({"cart_id": None}, "cart_id"),
        ({"smclient": "short"}, "smclient"),
        ({"smclient": "x" * 65}, "smclient"),
        ({"smclient": "<script>alert(1)</script>"}, "smclient"),
        ({"smclient": CONTACT + "\n"}, "smclient"),
    ],
)
def test_malformed_ids_are_refused_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(CartLinkError) as err:
        parse_cart_link(body(**changes))
    assert err.value.status == 400 and err.value.message.startswith(field)


@pytest.mark.parametrize("payload", [None, [], "x", 1])
def test_a_body_that_is_not_an_object_is_refused(payload: Any) -> None:
    with pytest.raises(CartLinkError, match="JSON object"):
        parse_cart_link(payload)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Shop.Example.com/", "https://shop.example.com"),
        ("https://shop.example.com:443/x", "https://shop.example.com"),
        ("http://127.0.0.1:8100/storefront/abc/1/", "http://127.0.0.1:8100"),
        ("javascript:alert(1)", None),
        ("https://", None),
        ("http://h:99999", None),
    ],
)
def test_origins_are_compared_as_browsers_send_them(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


def test_a_store_s_origins_come_from_its_sites_and_its_own_url() -> None:
    store = Store(
        hash="abc",
        sites=[
            {
                "id": 1000,
                "channel_id": 1,
                "url": "https://shop.example.com",
                "urls": [
                    {"url": "https://www.shop.example.com", "type": "primary"},
                    {"url": "https://checkout.example.com", "type": "checkout"},
                ],
            },
            {"id": 1001, "channel_id": 2, "url": "https://de.shop.example.com"},
        ],
        info={"secure_url": "https://abc.mybigcommerce.com"},
    )
    assert storefront_origins(store) == {
        "https://shop.example.com",
        "https://www.shop.example.com",
        "https://checkout.example.com",
        "https://de.shop.example.com",
        "https://abc.mybigcommerce.com",
    }


def test_rate_limit_is_per_client_and_store_and_moves_with_the_clock(settings: Settings) -> None:
    clock = FakeClock()
    previous = set_clock(clock)
    db = Database(settings.database_url)
    try:
        limiter = RateLimiter(Budget("cart-link", 3, 60), DatabaseCounters(db))
        assert [limiter.allow(("1.1.1.1", "abc"))[0] for _ in range(4)] == [True, True, True, False]
        assert limiter.allow(("1.1.1.1", "other"))[0] and limiter.allow(("2.2.2.2", "abc"))[0]
        allowed, wait = limiter.allow(("1.1.1.1", "abc"))
        assert not allowed and 0 < wait <= 60
        clock.advance(61)
        assert limiter.allow(("1.1.1.1", "abc"))[0]
    finally:
        db.dispose()
        set_clock(previous)


def test_rate_limiter_keeps_only_current_windows(settings: Settings) -> None:
    """The counters of ended windows are deleted when a new window starts: the table stays small."""
    clock = FakeClock()
    previous = set_clock(clock)
    db = Database(settings.database_url)
    try:
        limiter = RateLimiter(Budget("cart-link", 1, 60), DatabaseCounters(db))
        for i in range(300):
            limiter.allow((f"10.0.{i // 256}.{i % 256}", "abc"))
        clock.advance(121)
        limiter.allow(("10.9.9.9", "abc"))
        with db.session() as s:
            assert s.scalar(select(func.count()).select_from(RateCounter)) == 1
    finally:
        db.dispose()
        set_clock(previous)
