"""The Storefront API's cart (`GET /api/storefront/carts`): the REST cart in camelCase, less a few
fields only the REST API has, plus a few of its own."""

from __future__ import annotations

from smbc.sandbox.bigcommerce.render import v3
from smbc.sandbox.bigcommerce.state import Cart, Json

# Names that are not just the REST name in camelCase.
RENAMED = {
    "taxable": "isTaxable",
    "is_require_shipping": "isShippingRequired",
    "tax_included": "isTaxIncluded",
}
REST_ONLY_CART_FIELDS = frozenset({"channel_id", "manual_discount_amount", "redirect_urls"})
REST_ONLY_ITEM_FIELDS = frozenset({"coupons", "added_by_promotion"})


def camel_case(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _camel_cased(rest: Json, rest_only: frozenset[str] = frozenset()) -> Json:
    return {RENAMED.get(k, camel_case(k)): v for k, v in rest.items() if k not in rest_only}


def storefront_cart_json(cart: Cart, storefront_url: str) -> Json:
    rest = v3.cart_json(cart, storefront_url)
    items = [
        {
            **_camel_cased(item, REST_ONLY_ITEM_FIELDS),
            "brand": "Sandbox",
            "type": "physical",
            "giftWrapping": None,
            "options": [],
        }
        for item in rest["line_items"]["physical_items"]
    ]
    return {
        **_camel_cased(rest, REST_ONLY_CART_FIELDS),
        "currency": {**rest["currency"], "decimalPlaces": 2, "name": "US Dollar", "symbol": "$"},
        "lineItems": {**_camel_cased(rest["line_items"]), "physicalItems": items},
    }
