"""The product catalogue of a fake store: the built-in products every store starts with (the ones carts
and orders use), its categories, category tree and brands, and a bulk catalogue made on read.

The bulk catalogue (`seed_products`) is a rule, not rows: product `id` is computed whenever it is read,
so 50,000 products cost nothing until a page of them is asked for. A product changed by the merchant
becomes a stored row (`StoreState.product_row`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from smbc.sandbox.bigcommerce.state import (
    Brand,
    Category,
    CategoryTree,
    Product,
    StoreState,
    Variant,
    money,
)

SHOP_ALL = 20
OUTLET = 27
# id -> (name, parent id, custom URL)
CATEGORIES: dict[int, tuple[str, int, str]] = {
    SHOP_ALL: ("Shop All", 0, "/shop-all/"),
    21: ("Kitchen", SHOP_ALL, "/kitchen/"),
    22: ("Apparel", SHOP_ALL, "/apparel/"),
    23: ("Decor", SHOP_ALL, "/decor/"),
    24: ("Stationery", SHOP_ALL, "/stationery/"),
    25: ("Shoes", 22, "/apparel/shoes/"),
    26: ("Bags", SHOP_ALL, "/bags/"),
    OUTLET: ("Outlet", 0, "/outlet/"),
}
SANDBOX_GOODS = 31
BRANDS: dict[int, str] = {SANDBOX_GOODS: "Sandbox Goods", 32: "Outlet Co."}


@dataclass(frozen=True)
class BuiltInProduct:
    id: int
    name: str
    sku: str
    variant_id: int
    price: str
    stock: int
    categories: tuple[int, ...]
    channels: tuple[int, ...] = (1, 2)
    sale_price: str = "0"
    brand_id: int = SANDBOX_GOODS
    description: str = ""
    is_visible: bool = True
    images: int = 2


# The built-in catalogue. 77-81 are what carts, orders and the seeded orders hold (same ids, SKUs and
# variant ids), so events and catalog identifiers match.
BUILT_IN_PRODUCTS: tuple[BuiltInProduct, ...] = (
    BuiltInProduct(77, "Sandbox Mug", "MUG-01", 177, "12.50", 40, (SHOP_ALL, 21)),
    BuiltInProduct(78, "Sandbox T-Shirt", "TEE-01", 178, "24.00", 25, (SHOP_ALL, 22)),
    BuiltInProduct(79, "Sandbox Poster", "PST-01", 179, "8.99", 100, (SHOP_ALL, 23)),
    BuiltInProduct(80, "Sandbox Hoodie", "HOOD-01", 180, "49.90", 12, (SHOP_ALL, 22)),
    BuiltInProduct(81, "Sandbox Notebook", "NOTE-01", 181, "5.25", 3, (SHOP_ALL, 24), images=1),
    BuiltInProduct(
        83, "Sandbox Tote Bag", "TOTE-01", 185, "15.00", 9, (SHOP_ALL, 26), (1,), sale_price="12.00"
    ),
    BuiltInProduct(
        84, "Outlet Umbrella", "UMB-01", 186, "18.00", 7, (OUTLET,), (2,), sale_price="9.99", brand_id=32
    ),
    BuiltInProduct(85, "Sandbox Gift Wrap", "WRAP-01", 187, "3.00", 50, (SHOP_ALL,), is_visible=False),
)
# Seeded orders buy these (the catalogue the fake had before it had a catalog API).
EVERYDAY_PRODUCT_IDS = (77, 78, 79, 80, 81)
# A product with options: one variant per size, stock per variant, the large size dearer.
SNEAKERS_ID = 82
SNEAKER_SIZES: tuple[tuple[int, str, int, str | None], ...] = (
    (182, "S", 4, None),
    (183, "M", 0, None),
    (184, "L", 6, "64.00"),
)
BULK_FIRST_ID = 100_000
BULK_FIRST_VARIANT_ID = 1_000_000
BULK_SIZES = ("S", "M", "L")


def slug(name: str) -> str:
    return "-".join(name.lower().replace(".", "").split())


def _description(name: str) -> str:
    return f"<p>The <strong>{name}</strong>, made for the sandbox.</p><ul><li>Sturdy</li><li>Useful</li></ul>"


def add_built_in_catalog(store: StoreState, now: datetime) -> None:
    """Categories (one tree for both storefronts), brands and the built-in products."""
    store.category_trees[1] = CategoryTree(1, "Sandbox storefronts", [1, 2])
    for order, (category_id, (name, parent, url)) in enumerate(CATEGORIES.items()):
        store.categories[category_id] = Category(
            category_id, name, parent, sort_order=order, custom_url=url, description=f"<p>{name}</p>"
        )
    for brand_id, name in BRANDS.items():
        store.brands[brand_id] = Brand(brand_id, name, f"/brands/{slug(name)}/")
    for spec in BUILT_IN_PRODUCTS:
        variant = Variant(spec.variant_id, spec.id, spec.sku, spec.stock)
        store.products[spec.id] = Product(
            spec.id,
            spec.name,
            spec.sku,
            Decimal(spec.price),
            [variant],
            now,
            now,
            description=spec.description or _description(spec.name),
            sale_price=Decimal(spec.sale_price),
            brand_id=spec.brand_id,
            categories=list(spec.categories),
            channel_ids=list(spec.channels),
            custom_url=f"/{slug(spec.name)}/",
            image_count=spec.images,
            is_visible=spec.is_visible,
        )
    sizes = [
        Variant(
            vid, SNEAKERS_ID, f"SNK-01-{size}", stock, Decimal(price) if price else None, option_label=size
        )
        for vid, size, stock, price in SNEAKER_SIZES
    ]
    store.products[SNEAKERS_ID] = Product(
        SNEAKERS_ID,
        "Sandbox Sneakers",
        "SNK-01",
        Decimal("59.00"),
        sizes,
        now,
        now,
        description=_description("Sandbox Sneakers"),
        categories=[SHOP_ALL, 22, 25],
        channel_ids=[1, 2],
        custom_url="/sandbox-sneakers/",
        image_count=3,
        option_name="Size",
    )
    store.products = dict(sorted(store.products.items()))


@dataclass(frozen=True)
class BulkProducts:
    """`count` products from id 100000 on, `with_variants` of them (spread evenly) with sizes S, M, L.

    Every tenth is only on channel 2 and the next only on channel 1; the rest are on both."""

    count: int
    with_variants: int
    created: datetime

    @property
    def ids(self) -> range:
        return range(BULK_FIRST_ID, BULK_FIRST_ID + self.count)

    def has_variants(self, k: int) -> bool:
        return (k + 1) * self.with_variants // self.count > k * self.with_variants // self.count

    def product(self, product_id: int) -> Product:
        k = product_id - BULK_FIRST_ID
        first_variant = BULK_FIRST_VARIANT_ID + 3 * k
        sku = f"BULK-{product_id}"
        if self.has_variants(k):
            variants = [
                Variant(first_variant + j, product_id, f"{sku}-{size}", (k + j) % 7, option_label=size)
                for j, size in enumerate(BULK_SIZES)
            ]
        else:
            variants = [Variant(first_variant, product_id, sku, (k * 13) % 50)]
        price = money(Decimal(5) + Decimal(k * 37 % 9500) / 100)
        channels = [2] if k % 10 == 0 else [1] if k % 10 == 1 else [1, 2]
        modified = self.created + timedelta(seconds=k)
        name = f"Bulk Product {product_id}"
        return Product(
            product_id,
            name,
            sku,
            price,
            variants,
            self.created,
            modified,
            description=_description(name),
            sale_price=money(price * Decimal("0.8")) if k % 7 == 0 else Decimal("0"),
            brand_id=SANDBOX_GOODS + k % 2,
            categories=[SHOP_ALL, 21 + k % 6],
            channel_ids=channels,
            custom_url=f"/bulk-product-{product_id}/",
            image_count=1 + k % 3,
            option_name="Size" if len(variants) > 1 else "",
        )


def seed_products(store: StoreState, count: int, with_variants: int, now: datetime) -> dict[str, int]:
    """Add `count` bulk products (made on read), `with_variants` of them with three variants each."""
    if count < 0 or not 0 <= with_variants <= count:
        raise ValueError("products must be >= 0 and products_with_variants between 0 and products")
    if store.bulk_products is not None:
        raise ValueError("this store already has bulk products")
    if count:
        # Modified times run up to `now`, one second apart, so `date_modified:min` cuts the list.
        store.bulk_products = BulkProducts(count, with_variants, now - timedelta(seconds=count))
        store.touch()
    return {"products": count, "products_with_variants": with_variants}
