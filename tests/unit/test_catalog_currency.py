"""Catalog prices in the catalog's currency: BigCommerce's rate, the currency's decimals, and no
price at all when the store does not have the currency."""

from __future__ import annotations

from decimal import Decimal

import pytest

from smbc.bigcommerce.catalog import StoreCurrency
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
