"""BigCommerce product -> SALESmanago catalog products: identifiers as the events send them, HTML
stripped, limits, prices, availability."""

from __future__ import annotations

from typing import Any

from smbc.mapping.catalog_products import (
    DESCRIPTION_LIMIT,
    NAME_LIMIT,
    CatalogCategory,
    StorefrontCatalog,
    catalog_products,
    unavailable,
)
from smbc.mapping.records import product_identifiers


def product(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": 77,
        "name": "Blue <b>Mug</b>",
        "sku": "MUG",
        "description": "<p>Hot &amp; <script>x()</script>cold</p><ul><li>ceramic</li></ul>",
        "price": 20,
        "sale_price": 15,
        "categories": [5, 9],
        "brand_id": 3,
        "inventory_tracking": "variant",
        "inventory_level": 0,
        "is_visible": True,
        "availability": "available",
        "custom_url": {"url": "/blue-mug/", "is_customized": False},
        "images": [
            {"id": 1, "url_zoom": "https://cdn/2.jpg", "is_thumbnail": False, "sort_order": 1},
            {"id": 2, "url_zoom": "https://cdn/1.jpg", "is_thumbnail": True, "sort_order": 2},
        ],
        "variants": [
            {"id": 501, "sku": "MUG-S", "price": None, "sale_price": None, "inventory_level": 4},
            {
                "id": 502,
                "sku": "MUG-L",
                "price": 25,
                "sale_price": None,
                "inventory_level": 0,
                "image_url": "https://cdn/l.jpg",
            },
        ],
    }
    base.update(over)
    return base


STOREFRONT = StorefrontCatalog(
    site_url="https://shop.test/",
    categories={5: CatalogCategory("Kitchen"), 9: CatalogCategory("Mugs", 5)},
    brands={3: "Acme"},
)


def with_identifier(identifier: str) -> StorefrontCatalog:
    return StorefrontCatalog(STOREFRONT.site_url, identifier, STOREFRONT.categories, STOREFRONT.brands)


def test_one_product_per_product_by_id() -> None:
    [item] = catalog_products(product(), STOREFRONT)
    assert item["productId"] == "77"
    assert item["name"] == "Blue Mug"
    assert item["description"] == "Hot & cold ceramic"
    assert item["productUrl"] == "https://shop.test/blue-mug/"
    assert item["mainImageUrl"] == "https://cdn/1.jpg" and item["imageUrls"] == [
        "https://cdn/1.jpg",
        "https://cdn/2.jpg",
    ]
    assert (item["mainCategory"], item["categoryExternalId"], item["categories"]) == (
        "Kitchen",
        "5",
        ["Kitchen", "Mugs"],
    )
    assert item["systemDetails"] == {"brand": "Acme"}
    assert (item["price"], item["discountPrice"], item["quantity"], item["available"], item["active"]) == (
        20.0,
        15.0,
        4,
        True,
        True,
    )


def test_variant_identifiers_match_the_events_products() -> None:
    # A cart / order line of variant 502 as BigCommerce sends it.
    line = {"product_id": 77, "variant_id": 502, "sku": "MUG-L"}
    for identifier in ("id", "sku", "variant_id"):
        sent = {i["productId"] for i in catalog_products(product(), with_identifier(identifier))}
        event_products, _, _ = product_identifiers([line], identifier)
        assert event_products in sent, identifier
    by_variant = catalog_products(product(), with_identifier("variant_id"))
    assert [(i["productId"], i["price"], i["quantity"], i["available"]) for i in by_variant] == [
        ("501", 20.0, 4, True),
        ("502", 25.0, 0, False),
    ]
    assert by_variant[1]["mainImageUrl"] == "https://cdn/l.jpg"
    assert by_variant[1]["discountPrice"] == 15.0  # a variant without a sale price of its own: the product's
    assert catalog_products(product(sale_price=0), STOREFRONT)[0]["setAsNull"] == ["discountPrice"]


def test_variant_without_sku_is_left_out_by_sku() -> None:
    variants = [{"id": 1, "sku": ""}, {"id": 2, "sku": "B"}]
    assert [i["productId"] for i in catalog_products(product(variants=variants), with_identifier("sku"))] == [
        "B"
    ]


def test_limits_and_missing_fields() -> None:
    bare = {"id": 5, "name": "N" * 400, "description": "<p>" + "d" * 5000 + "</p>", "price": "9.999"}
    [item] = catalog_products(bare, STOREFRONT)
    assert len(item["name"]) == NAME_LIMIT and len(item["description"]) == DESCRIPTION_LIMIT
    assert item["mainCategory"] == "Uncategorized" and item["price"] == 10.0
    assert item["productUrl"] == "" and "mainImageUrl" not in item
    assert item["available"] is True  # inventory not tracked


def test_gone_product_is_unavailable_and_inactive() -> None:
    [item] = catalog_products(product(), STOREFRONT)
    gone = unavailable(item)
    assert (gone["productId"], gone["available"], gone["active"]) == ("77", False, False)
    hidden = catalog_products(product(is_visible=False), STOREFRONT)[0]
    assert hidden["available"] is False and hidden["active"] is False
