"""Catalog prices in the catalog's currency: BigCommerce's rate, the currency's decimals, and no
price at all when the store does not have the currency."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from smbc.bigcommerce import catalog as bc_catalog
from smbc.bigcommerce.catalog import StoreCurrency
from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.bigcommerce.limiter import LocalLimiter
from smbc.core.clock import FakeClock
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError
from smbc.mapping.catalog_products import (
    CurrencyNotInStore,
    PriceConversion,
    StorefrontCatalog,
    catalog_products,
    price_conversion,
)

USD = StoreCurrency("USD", Decimal("1.0000000000"), 2, is_default=True, enabled=True)
EUR = StoreCurrency("EUR", Decimal("0.9150000000"), 2, is_default=False, enabled=True)
JPY = StoreCurrency("JPY", Decimal("151.2700000000"), 0, is_default=False, enabled=True)
GBP_OFF = StoreCurrency("GBP", Decimal("0.7900000000"), 2, is_default=False, enabled=False)
STORE = [USD, EUR, JPY, GBP_OFF]

PRODUCT = {
    "id": 77,
    "name": "Shirt",
    "price": "24.99",
    "sale_price": "19.99",
    "custom_url": {"url": "/shirt/"},
    "variants": [{"id": 5, "sku": "S-1", "price": None, "sale_price": None}],
}


def test_the_store_currency_is_sent_as_it_is() -> None:
    prices = price_conversion("usd", STORE)
    assert (prices.rate, prices.decimal_places) == (Decimal(1), 2)
    item = catalog_products(PRODUCT, StorefrontCatalog("https://shop.test", prices=prices))[0]
    assert (item["price"], item["discountPrice"]) == (24.99, 19.99)


def test_another_currency_is_converted_at_the_store_rate_and_rounded_to_its_decimals() -> None:
    item = catalog_products(
        PRODUCT, StorefrontCatalog("https://shop.test", prices=price_conversion("EUR", STORE))
    )[0]
    assert (item["price"], item["discountPrice"]) == (22.87, 18.29)  # 22.86585 -> 22.87, 18.29085 -> 18.29

    yen = catalog_products(
        PRODUCT, StorefrontCatalog("https://shop.test", prices=price_conversion("JPY", STORE))
    )[0]
    assert (yen["price"], yen["discountPrice"]) == (3780.0, 3024.0)  # 3780.2373 and 3023.8873, no decimals


def test_a_variant_price_is_converted_too() -> None:
    product = {**PRODUCT, "variants": [{"id": 5, "sku": "S-1", "price": "10.00", "sale_price": "8.00"}]}
    item = catalog_products(
        product, StorefrontCatalog("https://shop.test", "sku", prices=price_conversion("EUR", STORE))
    )[0]
    assert (item["productId"], item["price"], item["discountPrice"]) == ("S-1", 9.15, 7.32)


def test_rounding_is_half_up() -> None:
    assert PriceConversion("EUR", Decimal("0.5"), 2).convert(Decimal("0.01")) == 0.01  # 0.005 -> 0.01
    assert PriceConversion("JPY", Decimal("1"), 0).convert(Decimal("2.5")) == 3.0


def test_a_rate_against_a_default_other_than_one_is_relative_to_the_default() -> None:
    default = StoreCurrency("USD", Decimal("2"), 2, is_default=True, enabled=True)
    euro = StoreCurrency("EUR", Decimal("1.8"), 2, is_default=False, enabled=True)
    assert price_conversion("EUR", [default, euro]).rate == Decimal("0.9")


@pytest.mark.parametrize("code", ["PLN", "GBP"])
def test_a_currency_the_store_has_not_enabled_is_refused_with_the_reason(code: str) -> None:
    with pytest.raises(CurrencyNotInStore) as refused:
        price_conversion(code, STORE)
    assert str(refused.value).startswith(f"catalog currency {code} is not a currency of this store")


def test_a_currency_with_no_usable_rate_is_refused() -> None:
    broken = StoreCurrency("EUR", Decimal("0"), 2, is_default=False, enabled=True)
    with pytest.raises(CurrencyNotInStore):
        price_conversion("EUR", [USD, broken])


def bc_client(answer: object) -> BigCommerceClient:
    clock = FakeClock()

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/stores/abc/v2/currencies"
        return httpx.Response(200, json=answer)

    return BigCommerceClient(
        "abc",
        "token",
        "https://bc.test",
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        recorder=CallBuffer(),
        limiter=LocalLimiter(clock=clock),
        clock=clock,
        policy=BackoffPolicy(attempts=1, base=0.1, cap=1.0),
    )


def test_the_store_currencies_are_read_with_their_rates_and_tolerant_extras() -> None:
    rows = [
        {
            "currency_code": "USD",
            "currency_exchange_rate": "1.0000000000",
            "is_default": True,
            "enabled": True,
        },
        {"currency_code": "eur", "currency_exchange_rate": "0.9150000000", "decimal_places": "x"},
    ]
    usd, eur = bc_catalog.currencies(bc_client(rows))
    assert (usd.code, usd.rate, usd.is_default) == ("USD", Decimal(1), True)
    assert (eur.code, eur.rate, eur.decimal_places, eur.enabled) == ("EUR", Decimal("0.915"), 2, True)


@pytest.mark.parametrize("missing", ["currency_code", "currency_exchange_rate"])
def test_a_currency_without_its_code_or_rate_is_an_unreadable_answer(missing: str) -> None:
    row = {"currency_code": "EUR", "currency_exchange_rate": "0.915"}
    del row[missing]
    with pytest.raises(RemoteCallError) as refused:
        bc_catalog.currencies(bc_client([row]))
    assert refused.value.outcome is Outcome.INVALID and missing in refused.value.message
