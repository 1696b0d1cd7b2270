"""The fake BigCommerce's currencies: the store's list with exchange rates, and a channel's
currency assignments, in the shapes of BigCommerce's API."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from fake_bc_harness import Harness, fake_bc_servers, harness_fixture  # noqa: F401
from test_fake_bigcommerce_openapi import Walker

from smbc.sandbox.bigcommerce.state import Currency


def test_the_store_lists_its_default_currency_and_the_others_with_their_rates(harness: Harness) -> None:
    h = harness
    with h.api(h.install()) as api:
        answer = api.get("/v2/currencies")
    assert answer.status_code == 200
    rows = {row["currency_code"]: row for row in answer.json()}
    assert rows["USD"]["is_default"] is True
    assert rows["USD"]["currency_exchange_rate"] == "1.0000000000"
    assert (rows["EUR"]["currency_exchange_rate"], rows["EUR"]["enabled"]) == ("0.9150000000", True)
    assert rows["EUR"]["decimal_places"] == 2


def test_a_currency_added_or_disabled_by_the_merchant_shows_in_the_list(harness: Harness) -> None:
    h = harness
    state = h.bc.store(h.store_hash)
    with h.bc.lock:
        state.currencies["EUR"].enabled = False
        state.currencies["JPY"] = Currency(3, "JPY", "Yen", Decimal("151.27"), "¥", "JP", decimal_places=0)
    with h.api(h.install()) as api:
        rows = {row["currency_code"]: row for row in api.get("/v2/currencies").json()}
    assert rows["EUR"]["enabled"] is False
    assert (rows["JPY"]["currency_exchange_rate"], rows["JPY"]["decimal_places"]) == ("151.2700000000", 0)


def test_a_channel_inherits_the_store_currencies_unless_it_has_its_own(harness: Harness) -> None:
    h = harness
    with h.api(h.install()) as api:
        inherited = api.get("/v3/channels/1/currency-assignments").json()["data"]
        with h.bc.lock:
            h.bc.store(h.store_hash).channel_currencies[2] = (["EUR"], "EUR")
        own = api.get("/v3/channels/2/currency-assignments").json()["data"]
        missing = api.get("/v3/channels/99/currency-assignments")
    assert inherited == {"channel_id": 1, "enabled_currencies": ["USD", "EUR"], "default_currency": "USD"}
    assert own == {"channel_id": 2, "enabled_currencies": ["EUR"], "default_currency": "EUR"}
    assert missing.status_code == 404


def test_currency_assignments_match_the_spec(harness: Harness, openapi_dir: Path) -> None:
    walker = Walker(harness, harness.install(), openapi_dir)
    walker.call("channels.v3.yml", "GET", "/channels/1/currency-assignments")
    walker.call("channels.v3.yml", "GET", "/channels/99/currency-assignments", expect=404)
