"""v3 catalog answers: products (with their variants, images and options when included), categories,
category trees and brands, in the shapes of BigCommerce's catalog specs."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from decimal import Decimal

from smbc.sandbox.bigcommerce.render.formats import iso, v3_money
from smbc.sandbox.bigcommerce.state import Brand, Category, Json, Product, Variant

# What BigCommerce gives every product the fake does not model (fields named as in the product schema).
_PRODUCT_DEFAULTS: Json = {
    "type": "physical",
    "weight": 1.0,
    "width": 0,
    "depth": 0,
    "height": 0,
    "cost_price": 0,
    "retail_price": 0,
    "map_price": 0,
    "tax_class_id": 0,
    "product_tax_code": "",
    "option_set_display": "right",
    "inventory_warning_level": 0,
    "reviews_rating_sum": 0,
    "reviews_count": 0,
    "total_sold": 0,
    "fixed_cost_shipping_price": 0,
    "is_free_shipping": False,
    "is_featured": False,
    "related_products": [-1],
    "warranty": "",
    "bin_picking_number": "",
    "layout_file": "product.html",
    "upc": "",
    "mpn": "",
    "gtin": "",
    "search_keywords": "",
    "availability_description": "",
    "gift_wrapping_options_type": "any",
    "gift_wrapping_options_list": [],
    "sort_order": 0,
    "condition": "New",
    "is_condition_shown": False,
    "order_quantity_minimum": 0,
    "order_quantity_maximum": 0,
    "page_title": "",
    "meta_keywords": [],
    "meta_description": "",
    "view_count": 0,
    "preorder_release_date": None,
    "preorder_message": "",
    "is_preorder_only": False,
    "is_price_hidden": False,
    "price_hidden_label": "",
    "open_graph_type": "product",
    "open_graph_title": "",
    "open_graph_description": "",
    "open_graph_use_meta_description": True,
    "open_graph_use_product_name": True,
    "open_graph_use_image": True,
}
# `include=` values the fake answers with an empty list (it models none of them).
_EMPTY_INCLUDES = {
    "custom_fields": "custom_fields",
    "bulk_pricing_rules": "bulk_pricing_rules",
    "modifiers": "modifiers",
    "videos": "videos",
    "parent_relations": "parent_relations",
}
OPTION_ID_BASE = 500  # a product's one option has id OPTION_ID_BASE + product id
OPTION_VALUE_LABELS = ("S", "M", "L", "XL")


def image_url(base_url: str, product_id: int, n: int, size: str) -> str:
    return f"{base_url}/product_images/{size}/{product_id}/{n}.png"


def image_json(product: Product, n: int, base_url: str) -> Json:
    url = image_url(base_url, product.id, n, "standard")
    return {
        "id": product.id * 10 + n,
        "product_id": product.id,
        "is_thumbnail": n == 0,
        "sort_order": n,
        "description": f"{product.name}, picture {n + 1}",
        "image_file": f"sandbox/{product.id}_{n}.png",
        "image_url": url,
        "url_zoom": image_url(base_url, product.id, n, "zoom"),
        "url_standard": url,
        "url_thumbnail": image_url(base_url, product.id, n, "thumbnail"),
        "url_tiny": image_url(base_url, product.id, n, "tiny"),
        "date_modified": iso(product.date_modified),
    }


def _money_or_none(value: Decimal | None) -> float | None:
    return v3_money(value) if value is not None else None


def option_value_id(product: Product, variant: Variant) -> int:
    return product.id * 10 + OPTION_VALUE_LABELS.index(variant.option_label)


def variant_json(product: Product, variant: Variant) -> Json:
    option_values = []
    if product.has_options:
        option_values.append(
            {
                "id": option_value_id(product, variant),
                "label": variant.option_label,
                "option_id": OPTION_ID_BASE + product.id,
                "option_display_name": product.option_name,
            }
        )
    return {
        "id": variant.id,
        "product_id": product.id,
        "sku": variant.sku,
        "sku_id": variant.id,
        "price": _money_or_none(variant.price),
        "calculated_price": v3_money(product.price_of(variant)),
        "sale_price": _money_or_none(variant.sale_price),
        "retail_price": None,
        "map_price": None,
        "cost_price": None,
        "weight": None,
        "calculated_weight": 1.0,
        "width": None,
        "height": None,
        "depth": None,
        "is_free_shipping": False,
        "fixed_cost_shipping_price": None,
        "purchasing_disabled": False,
        "purchasing_disabled_message": "",
        "image_url": "",
        "upc": "",
        "mpn": "",
        "gtin": "",
        "inventory_level": variant.inventory_level,
        "inventory_warning_level": 0,
        "bin_picking_number": "",
        "option_values": option_values,
    }


def option_json(product: Product) -> Json:
    return {
        "id": OPTION_ID_BASE + product.id,
        "product_id": product.id,
        "display_name": product.option_name,
        "type": "rectangles",
        "sort_order": 0,
        "option_values": [
            {
                "id": option_value_id(product, v),
                "label": v.option_label,
                "sort_order": i,
                "value_data": {},
                "is_default": False,
            }
            for i, v in enumerate(product.variants)
        ],
    }


def product_json(product: Product, base_url: str, include: AbstractSet[str] = frozenset()) -> Json:
    """A product as `GET /v3/catalog/products[/{id}]` gives it; `include` adds sub-resources."""
    base = product.variants[0]
    sale = product.sale_price
    out: Json = {
        "id": product.id,
        "name": product.name,
        "sku": product.sku,
        "description": product.description,
        "price": v3_money(product.price),
        "sale_price": v3_money(sale),
        "calculated_price": v3_money(sale if sale else product.price),
        "categories": list(product.categories),
        "brand_id": product.brand_id,
        "inventory_level": product.inventory_level,
        "inventory_tracking": product.inventory_tracking,
        "is_visible": product.is_visible,
        "availability": product.availability,
        "custom_url": {"url": product.custom_url, "is_customized": True},
        # A product with options has no base variant (the spec types it integer; BigCommerce sends null).
        "base_variant_id": None if product.has_options else base.id,
        "date_created": iso(product.date_created),
        "date_modified": iso(product.date_modified),
        **_PRODUCT_DEFAULTS,
    }
    if product.has_options:
        out["option_set_id"] = OPTION_ID_BASE + product.id
    if "variants" in include:
        out["variants"] = [variant_json(product, v) for v in product.variants]
    if "images" in include:
        out["images"] = [image_json(product, n, base_url) for n in range(product.image_count)]
    if "primary_image" in include and product.image_count:
        out["primary_image"] = image_json(product, 0, base_url)
    if "options" in include:
        out["options"] = [option_json(product)] if product.has_options else []
    if "channels" in include:
        out["channels"] = list(product.channel_ids)
    for name, key in _EMPTY_INCLUDES.items():
        if name in include:
            out[key] = []
    return out


def _category_fields(category: Category) -> Json:
    """What both category answers hold (the catalog's own list and the category trees' list)."""
    return {
        "parent_id": category.parent_id,
        "name": category.name,
        "description": category.description,
        "views": 0,
        "sort_order": category.sort_order,
        "page_title": "",
        "meta_keywords": [],
        "meta_description": "",
        "layout_file": "category.html",
        "image_url": "",
        "is_visible": category.is_visible,
        "search_keywords": "",
        "default_product_sort": "use_store_settings",
    }


def category_json(category: Category) -> Json:
    """A category as `GET /v3/catalog/categories` lists it."""
    custom_url = {"url": category.custom_url, "is_customized": True}
    return {"id": category.id, **_category_fields(category), "custom_url": custom_url}


def tree_category_json(category: Category) -> Json:
    """A category as `GET /v3/catalog/trees/categories` lists it (its own names for the id and URL)."""
    return {
        "category_id": category.id,
        "category_uuid": f"00000000-0000-4000-8000-{category.id:012d}",
        "tree_id": category.tree_id,
        **_category_fields(category),
        "url": {"path": category.custom_url, "is_customized": True},
    }


def brand_json(brand: Brand) -> Json:
    return {
        "id": brand.id,
        "name": brand.name,
        "page_title": brand.name,
        "meta_keywords": [],
        "meta_description": "",
        "search_keywords": "",
        "image_url": "",
        "custom_url": {"url": brand.custom_url, "is_customized": False},
    }
