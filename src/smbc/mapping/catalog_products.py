"""BigCommerce catalog products -> SALESmanago catalog products (pure, no I/O).

One SALESmanago product per BigCommerce product when the store's `product_identifier` is `id`, or
one per variant when it is `sku` or `variant_id`; `productId` is then exactly the value the CART and
PURCHASE events put in their `products` (`mapping.records.product_identifiers`): the product id,
the variant's SKU, or the variant id.

Prices come from BigCommerce in the store's default currency; `PriceConversion` turns them into the
catalog's currency with the store's own exchange rate, rounded to that currency's decimal places."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from smbc.bigcommerce.catalog import StoreCurrency

# SALESmanago's own limits are UNCONFIRMED for name and description: trim to these safe sizes.
NAME_LIMIT = 255
DESCRIPTION_LIMIT = 2000
URL_LIMIT = 2048
CATEGORY_LIMIT = 255
BRAND_LIMIT = 255
MAX_IMAGES = 10
UNCATEGORIZED = "Uncategorized"

_TAG = re.compile(r"<[^>]*>")
_BLOCK_END = re.compile(r"</(p|div|li|h[1-6]|tr)\s*>|<br\s*/?>", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class CatalogCategory:
    name: str
    parent_id: int = 0


class CurrencyNotInStore(ValueError):
    """The catalog's currency is not one the store has enabled: no rate, so no price can be sent."""

    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(
            f"catalog currency {code} is not a currency of this store: enable it in BigCommerce "
            "(Settings > Currencies) or pick a catalog in the store's currency"
        )


@dataclass(frozen=True)
class PriceConversion:
    """BigCommerce prices are in the store's default currency; a catalog may be in another one."""

    currency: str = ""
    rate: Decimal = Decimal(1)  # catalog currency units per unit of the store's default currency
    decimal_places: int = 2

    def convert(self, amount: Decimal) -> float:
        step = Decimal(1).scaleb(-max(0, min(self.decimal_places, 6)))
        return float((amount * self.rate).quantize(step, rounding=ROUND_HALF_UP))


def price_conversion(catalog_currency: str, store_currencies: Sequence[StoreCurrency]) -> PriceConversion:
    """How to turn the store's prices into the catalog's currency, with BigCommerce's own rate.
    CurrencyNotInStore when the store does not have the currency enabled (never a price in the
    wrong currency)."""
    code = catalog_currency.strip().upper()
    by_code = {c.code: c for c in store_currencies}
    default = next((c for c in store_currencies if c.is_default), None)
    wanted = by_code.get(code)
    if wanted is not None and default is not None and wanted.code == default.code:
        return PriceConversion(code, Decimal(1), wanted.decimal_places)
    if wanted is None or not wanted.enabled or wanted.rate <= 0:
        raise CurrencyNotInStore(code)
    # The default's own rate is 1 on BigCommerce; divided by anyway so a stale one cannot skew prices.
    base_rate = default.rate if default is not None and default.rate > 0 else Decimal(1)
    return PriceConversion(code, wanted.rate / base_rate, wanted.decimal_places)


@dataclass(frozen=True)
class StorefrontCatalog:
    """What the mapping needs to know about one storefront and its store's catalog."""

    site_url: str  # the channel's site, e.g. https://shop.example.com
    identifier: str = "id"  # the store's `product_identifier`: id | sku | variant_id
    categories: Mapping[int, CatalogCategory] = field(default_factory=dict)
    brands: Mapping[int, str] = field(default_factory=dict)
    prices: PriceConversion = field(default_factory=PriceConversion)


def plain_text(value: object, limit: int) -> str:
    """HTML to one line of text (tags and scripts dropped, entities decoded), trimmed to `limit`."""
    text = _SCRIPT.sub(" ", str(value or ""))
    text = _BLOCK_END.sub(" ", text)
    text = html.unescape(_TAG.sub("", text))
    return trim(_SPACE.sub(" ", text).strip(), limit)


def trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _price(value: object, prices: PriceConversion) -> float | None:
    if value in (None, "") or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    return prices.convert(amount) if amount.is_finite() else None


def product_url(site_url: str, product: Mapping[str, Any]) -> str:
    custom = product.get("custom_url")
    path = str(custom.get("url") or "") if isinstance(custom, Mapping) else ""
    if not path:
        return ""
    return site_url.rstrip("/") + "/" + path.lstrip("/")


def _image_url(image: Mapping[str, Any]) -> str:
    return str(image.get("url_zoom") or image.get("url_standard") or image.get("image_url") or "")


def product_images(product: Mapping[str, Any]) -> list[str]:
    """Image URLs, the thumbnail first, then by sort order."""
    images = [i for i in product.get("images") or [] if isinstance(i, Mapping) and _image_url(i)]
    images.sort(
        key=lambda i: (not i.get("is_thumbnail"), int(i.get("sort_order") or 0), int(i.get("id") or 0))
    )
    return [_image_url(i)[:URL_LIMIT] for i in images]


def _category_names(
    product: Mapping[str, Any], categories: Mapping[int, CatalogCategory]
) -> list[tuple[int, str]]:
    named: list[tuple[int, str]] = []
    for raw in product.get("categories") or []:
        try:
            category_id = int(raw)
        except (TypeError, ValueError):
            continue
        category = categories.get(category_id)
        if category is not None and category.name:
            named.append((category_id, trim(category.name, CATEGORY_LIMIT)))
    return named


def identifier_of(product: Mapping[str, Any], variant: Mapping[str, Any] | None, identifier: str) -> str:
    """The `productId` for a product (identifier `id`) or one of its variants, as the events send it
    (empty: the variant has no SKU, so no event can name it either)."""
    if identifier == "id" or variant is None:
        value = product.get("id")
    elif identifier == "sku":
        value = variant.get("sku")
    else:
        value = variant.get("id")
    text = str(value or "").strip()
    return "" if text == "0" else text


def _variants(product: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    variants = [v for v in product.get("variants") or [] if isinstance(v, Mapping)]
    if variants:
        return variants
    # A product read without variants: its base variant carries the product's own SKU.
    return [{"id": product.get("base_variant_id"), "sku": product.get("sku"), "price": None}]


def _quantity(product: Mapping[str, Any], variant: Mapping[str, Any] | None) -> int:
    tracking = product.get("inventory_tracking") or "none"
    if tracking == "variant":
        variants = [variant] if variant is not None else _variants(product)
        return sum(int(v.get("inventory_level") or 0) for v in variants)
    return int(product.get("inventory_level") or 0)


def _available(product: Mapping[str, Any], variant: Mapping[str, Any] | None, quantity: int) -> bool:
    if not product.get("is_visible", True) or product.get("availability") == "disabled":
        return False
    if variant is not None and variant.get("purchasing_disabled"):
        return False
    return (product.get("inventory_tracking") or "none") == "none" or quantity > 0


def catalog_products(product: Mapping[str, Any], storefront: StorefrontCatalog) -> list[dict[str, Any]]:
    """The SALESmanago products for one BigCommerce product (read with variants and images)."""
    images = product_images(product)
    categories = _category_names(product, storefront.categories)
    brand = storefront.brands.get(int(product.get("brand_id") or 0), "")
    url = product_url(storefront.site_url, product)
    base: dict[str, Any] = {
        "name": plain_text(product.get("name"), NAME_LIMIT),
        "description": plain_text(product.get("description"), DESCRIPTION_LIMIT),
        "productUrl": url[:URL_LIMIT],
        "mainCategory": categories[0][1] if categories else UNCATEGORIZED,
        "categoryExternalId": str(categories[0][0]) if categories else "",
        "categories": [name for _, name in categories] or [UNCATEGORIZED],
        "active": bool(product.get("is_visible", True)),
    }
    if brand:
        base["systemDetails"] = {"brand": trim(brand, BRAND_LIMIT)}
    if storefront.identifier == "id":
        return [_finish(base, product, None, identifier_of(product, None, "id"), images, storefront.prices)]
    out = []
    for variant in _variants(product):
        product_id = identifier_of(product, variant, storefront.identifier)
        if product_id:
            out.append(_finish(base, product, variant, product_id, images, storefront.prices))
    return out


def _finish(
    base: Mapping[str, Any],
    product: Mapping[str, Any],
    variant: Mapping[str, Any] | None,
    product_id: str,
    images: Sequence[str],
    prices: PriceConversion,
) -> dict[str, Any]:
    item = {"productId": product_id, **base}
    price = _price(variant.get("price"), prices) if variant is not None else None
    sale = _price(variant.get("sale_price"), prices) if variant is not None else None
    price = price if price is not None else _price(product.get("price"), prices)
    sale = sale if sale is not None else _price(product.get("sale_price"), prices)
    item["price"] = price if price is not None else 0.0
    if sale and price is not None and 0 < sale < price:
        item["discountPrice"] = sale
    else:
        item["setAsNull"] = ["discountPrice"]  # a sale that ended must not stay in SALESmanago
    own_image = str(variant.get("image_url") or "") if variant is not None else ""
    ordered = [own_image, *[i for i in images if i != own_image]] if own_image else list(images)
    if ordered:
        item["mainImageUrl"] = ordered[0][:URL_LIMIT]
        item["imageUrls"] = list(ordered[:MAX_IMAGES])
    quantity = _quantity(product, variant)
    item["quantity"] = quantity
    item["available"] = _available(product, variant, quantity)
    return item


def unavailable(last_sent: Mapping[str, Any]) -> dict[str, Any]:
    """A product gone from the storefront: what was last sent, marked unavailable and inactive."""
    item = {k: v for k, v in last_sent.items() if k != "setAsNull"}
    item.update(available=False, active=False)
    return item


def quantity_update(item: Mapping[str, Any]) -> dict[str, Any]:
    return {"productId": item["productId"], "quantity": item.get("quantity", 0)}


# The fields a product's last sent payload keeps (enough to mark it unavailable later).
REMEMBERED_FIELDS = (
    "productId",
    "name",
    "productUrl",
    "mainCategory",
    "price",
    "mainImageUrl",
    "quantity",
    "available",
    "active",
)


def remembered(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: item[k] for k in REMEMBERED_FIELDS if k in item}
