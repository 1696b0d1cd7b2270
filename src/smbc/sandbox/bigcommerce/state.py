"""In-memory state of the fake BigCommerce: one `StoreState` per store hash.

Rows are plain dataclasses (slots, so the seeder can build 100,000 of them quickly). Every read and
write goes through `FakeBigCommerce.lock`; nothing here is thread-safe on its own.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
K = TypeVar("K")
Json = dict[str, Any]
# The consent that makes a subscriber a newsletter subscriber (the other one is `abandoned_cart`).
NEWSLETTER_CONSENT = "marketing_newsletter"

# BigCommerce's fixed order statuses: id -> (name, description).
ORDER_STATUSES: dict[int, tuple[str, str]] = {
    0: (
        "Incomplete",
        "An incomplete order happens when a shopper reached the payment page, "
        "but did not complete the transaction.",
    ),
    1: ("Pending", "Customer started the checkout process, but did not complete it."),
    2: ("Shipped", "Order has been shipped, but receipt has not been confirmed."),
    3: ("Partially Shipped", "Only some items in the order have been shipped."),
    4: ("Refunded", "Seller has used the Refund action."),
    5: ("Cancelled", "Seller has cancelled an order, due to a stock inconsistency or other reasons."),
    6: ("Declined", "Seller has marked the order as declined for lack of manual payment, or other reasons."),
    7: ("Awaiting Payment", "Customer has completed checkout process, but payment has yet to be confirmed."),
    8: (
        "Awaiting Pickup",
        "Order has been pulled, and is awaiting customer pickup from a seller-specified location.",
    ),
    9: (
        "Awaiting Shipment",
        "Order has been pulled and packaged, and is awaiting collection from a shipping provider.",
    ),
    10: (
        "Completed",
        "Client has paid for their digital product and their file(s) are available for download.",
    ),
    11: (
        "Awaiting Fulfillment",
        "Customer has completed the checkout process and payment has been confirmed.",
    ),
    12: ("Manual Verification Required", "Order on hold while some aspect needs to be manually confirmed."),
    13: ("Disputed", "Customer has initiated a dispute resolution process for the PayPal transaction."),
    14: ("Partially Refunded", "Seller has partially refunded the order."),
}


@dataclass(slots=True)
class User:
    id: int
    email: str
    username: str
    locale: str = "en-US"


# A channel in any of these statuses is enabled (`is_enabled`, and `available=true` lists it).
ENABLED_CHANNEL_STATUSES = ("active", "prelaunch", "connected")


@dataclass(slots=True)
class Channel:
    id: int
    name: str
    date_created: datetime
    date_modified: datetime
    type: str = "storefront"
    platform: str = "bigcommerce"
    status: str = "active"
    is_listable_from_ui: bool = True
    is_visible: bool = True
    external_id: str = ""


@dataclass(slots=True)
class Site:
    id: int
    channel_id: int
    created_at: datetime
    updated_at: datetime


@dataclass(slots=True)
class Variant:
    """One purchasable SKU of a product; a product without options has exactly one (its base variant)."""

    id: int
    product_id: int
    sku: str
    inventory_level: int
    # None: the product's own price (what BigCommerce answers for a variant without a price of its own).
    price: Decimal | None = None
    sale_price: Decimal | None = None
    option_label: str = ""  # the value of the product's one option ("M"); "" for a base variant


@dataclass(slots=True)
class Product:
    id: int
    name: str
    sku: str
    price: Decimal
    variants: list[Variant]
    date_created: datetime
    date_modified: datetime
    description: str = ""  # HTML, as merchants write it
    sale_price: Decimal = Decimal("0")  # 0: not on sale
    brand_id: int = 0
    categories: list[int] = field(default_factory=list)
    channel_ids: list[int] = field(default_factory=lambda: [1])
    custom_url: str = ""
    image_count: int = 1
    is_visible: bool = True
    availability: str = "available"
    option_name: str = ""  # the one option's display name ("Size") when the product has variants

    @property
    def has_options(self) -> bool:
        return bool(self.option_name)

    @property
    def inventory_tracking(self) -> str:
        return "variant" if self.has_options else "product"

    @property
    def inventory_level(self) -> int:
        """A product's stock is its variants' stock (one base variant for a product without options)."""
        return sum(v.inventory_level for v in self.variants)

    @property
    def variant_id(self) -> int:
        """The variant a shopper gets without choosing one (the base variant, else the first)."""
        return self.variants[0].id

    def variant(self, variant_id: int | None) -> Variant | None:
        """The variant with that id (None: the default one)."""
        if variant_id is None:
            return self.variants[0]
        return next((v for v in self.variants if v.id == variant_id), None)

    def price_of(self, variant: Variant) -> Decimal:
        """What a shopper pays: the sale price, else the price (each falls back to the product's)."""
        sale = variant.sale_price if variant.sale_price is not None else self.sale_price
        if sale:
            return sale
        return variant.price if variant.price is not None else self.price


@dataclass(slots=True)
class Category:
    id: int
    name: str
    parent_id: int = 0
    tree_id: int = 1
    sort_order: int = 0
    custom_url: str = ""
    description: str = ""
    is_visible: bool = True


@dataclass(slots=True)
class CategoryTree:
    id: int
    name: str
    channel_ids: list[int]


@dataclass(slots=True)
class Brand:
    id: int
    name: str
    custom_url: str = ""


@dataclass(slots=True)
class Address:
    id: int
    customer_id: int
    first_name: str
    last_name: str
    address1: str
    city: str
    postal_code: str
    country_code: str = "US"
    country: str = "United States"
    state_or_province: str = ""
    address2: str = ""
    company: str = ""
    phone: str = ""
    address_type: str = "residential"


@dataclass(slots=True)
class Customer:
    id: int
    email: str
    first_name: str
    last_name: str
    date_created: datetime
    date_modified: datetime
    origin_channel_id: int = 1
    channel_ids: list[int] | None = None
    company: str = ""
    phone: str = ""
    notes: str = ""
    registration_ip_address: str = ""
    customer_group_id: int = 0
    accepts_product_review_abandoned_cart_emails: bool = False
    addresses: list[Address] = field(default_factory=list)


@dataclass(slots=True)
class Subscriber:
    id: int
    email: str
    first_name: str
    last_name: str
    source: str
    channel_id: int
    consents: list[str]
    date_created: datetime
    date_modified: datetime
    order_id: int | None = None


@dataclass(slots=True, kw_only=True)
class Purchase:
    """What a cart line or an order line holds: a product's variant, how many, at what unit price."""

    product_id: int
    variant_id: int
    sku: str
    name: str
    quantity: int
    price: Decimal

    def purchase(self) -> dict[str, Any]:
        """These fields alone (an order line copies them from its cart line)."""
        return {name: getattr(self, name) for name in PURCHASE_FIELDS}


PURCHASE_FIELDS = ("product_id", "variant_id", "sku", "name", "quantity", "price")


@dataclass(slots=True, kw_only=True)
class LineItem(Purchase):
    id: str


@dataclass(slots=True)
class Cart:
    id: str
    channel_id: int
    customer_id: int
    email: str
    created_time: datetime
    updated_time: datetime
    line_items: list[LineItem] = field(default_factory=list)
    version: int = 1
    currency: str = "USD"


@dataclass(slots=True, kw_only=True)
class OrderLine(Purchase):
    id: int
    order_id: int
    quantity_refunded: int = 0


@dataclass(slots=True)
class Order:
    id: int
    customer_id: int
    channel_id: int
    status_id: int
    date_created: datetime
    date_modified: datetime
    billing: dict[str, str]
    lines: list[OrderLine]
    subtotal: Decimal
    shipping: Decimal
    total: Decimal
    cart_id: str = ""
    is_email_opt_in: bool = False
    refunded_amount: Decimal = Decimal("0")
    currency_code: str = "USD"
    payment_method: str = "Test Payment Gateway"
    ip_address: str = "127.0.0.1"
    is_deleted: bool = False
    date_shipped: datetime | None = None
    customer_message: str = ""
    staff_notes: str = ""


@dataclass(slots=True)
class Refund:
    id: int
    order_id: int
    amount: Decimal
    created: datetime
    reason: str = ""


@dataclass(slots=True)
class Script:
    uuid: str
    client_id: str
    name: str
    date_created: datetime
    date_modified: datetime
    description: str = ""
    html: str = ""
    src: str = ""
    auto_uninstall: bool = False
    load_method: str = "default"
    location: str = "footer"
    visibility: str = "storefront"
    kind: str = "src"
    # UNCONFIRMED by the schema (its enum omits it), but the spec's text says omitted means `unknown`.
    consent_category: str = "unknown"
    enabled: bool = True
    channel_id: int = 1
    integrity_hashes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Hook:
    id: int
    client_id: str
    scope: str
    destination: str
    headers: dict[str, str] | None
    is_active: bool
    created_at: int
    updated_at: int
    # True once the retry ladder ran out (`status: deactivated` in /v3/hooks/admin).
    deactivated: bool = False


@dataclass(slots=True)
class Token:
    value: str
    client_id: str
    scopes: frozenset[str]


@dataclass(slots=True)
class Grant:
    """A one-time authorization code handed to the app's auth callback."""

    code: str
    store_hash: str
    user_id: int
    scopes: tuple[str, ...]
    issued_at: float
    used: bool = False


@dataclass
class Quota:
    requests: int = 450
    window_s: float = 30.0
    window_started: float | None = None
    used: int = 0
    received: int = 0  # in this window, refused requests too


class Dated(Protocol):
    date_modified: datetime


class ProductSource(Protocol):
    """Products made on read (a seeded bulk catalog): `ids` in order, `product(id)` a fresh row each time."""

    @property
    def ids(self) -> range: ...

    def product(self, product_id: int) -> Product: ...


@dataclass(slots=True)
class Currency:
    """A currency of the store (Settings > Currencies); the default one's rate is 1."""

    id: int
    code: str
    name: str
    exchange_rate: Decimal  # units of this currency per unit of the default currency
    token: str
    country_iso2: str
    is_default: bool = False
    enabled: bool = True
    decimal_places: int = 2


def seeded_currencies() -> dict[str, Currency]:
    return {
        "USD": Currency(1, "USD", "US Dollar", Decimal("1"), "$", "US", is_default=True),
        "EUR": Currency(2, "EUR", "Euro", Decimal("0.915"), "€", "EU"),
    }


@dataclass
class StoreState:
    """Everything one store holds. Dicts are keyed by id, in creation (= id) order."""

    hash: str
    store_id: int
    name: str
    owner: User
    users: dict[int, User]
    created: datetime
    channels: dict[int, Channel] = field(default_factory=dict)
    sites: dict[int, Site] = field(default_factory=dict)
    # Products kept as rows (the built-in catalogue, and bulk products once changed); `product()` reads both.
    products: dict[int, Product] = field(default_factory=dict)
    bulk_products: ProductSource | None = None
    deleted_products: set[int] = field(default_factory=set)
    categories: dict[int, Category] = field(default_factory=dict)
    category_trees: dict[int, CategoryTree] = field(default_factory=dict)
    brands: dict[int, Brand] = field(default_factory=dict)
    currencies: dict[str, Currency] = field(default_factory=seeded_currencies)
    # channel id -> (enabled codes, default code); a channel without its own inherits the store's.
    channel_currencies: dict[int, tuple[list[str], str]] = field(default_factory=dict)
    customers: dict[int, Customer] = field(default_factory=dict)
    subscribers: dict[int, Subscriber] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)
    refunds: dict[int, Refund] = field(default_factory=dict)
    carts: dict[str, Cart] = field(default_factory=dict)
    scripts: dict[str, Script] = field(default_factory=dict)
    hooks: dict[int, Hook] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    hook_admin_emails: list[str] = field(default_factory=list)
    installed: bool = False
    # Storefront cookie-consent banner: scripts then run only in categories the shopper accepted.
    consent_banner: bool = False
    app_token: str | None = None
    # Converted carts: cart id -> order id (the cart itself is gone, as on BigCommerce).
    converted_carts: dict[str, int] = field(default_factory=dict)
    # Abandoned-cart tokens (store/cart/abandoned): token -> cart id.
    abandoned_carts: dict[str, str] = field(default_factory=dict)
    quota: Quota = field(default_factory=Quota)
    # Bumped on every change; `list_cache` (filtered, sorted lists for paging) is only valid for one revision.
    revision: int = 0
    list_cache: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    cache_revision: int = -1
    customer_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    address_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    subscriber_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    order_ids: itertools.count = field(default_factory=lambda: itertools.count(100))
    order_line_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    refund_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    hook_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    channel_ids: itertools.count = field(default_factory=lambda: itertools.count(3))
    site_ids: itertools.count = field(default_factory=lambda: itertools.count(1002))
    product_ids: itertools.count = field(default_factory=lambda: itertools.count(100))
    variant_ids: itertools.count = field(default_factory=lambda: itertools.count(200))

    def touch(self) -> None:
        self.revision += 1

    def modified(self, row: Dated, now: datetime, fields: Mapping[str, Any] | None = None) -> None:
        """How a row changes: `fields` set on it, its `date_modified` stamped, the revision bumped."""
        for name, value in (fields or {}).items():
            setattr(row, name, value)
        row.date_modified = now
        self.touch()

    def removed(self, rows: dict[K, Any], key: K) -> None:
        """Delete a row (it must exist) and bump the revision."""
        del rows[key]
        self.touch()

    def cached(self, key: tuple[Any, ...], build: Callable[[], T]) -> T:
        """`build()` once per revision and key (an export pages through the same filtered list 400 times)."""
        if self.cache_revision != self.revision or len(self.list_cache) > 64:
            self.list_cache.clear()
            self.cache_revision = self.revision
        if key not in self.list_cache:
            self.list_cache[key] = build()
        return self.list_cache[key]

    def customer_by_email(self, email: str, channel_id: int | None = None) -> Customer | None:
        wanted = email.strip().lower()
        for customer in self.customers.values():
            if customer.email.lower() == wanted and (
                channel_id is None or customer.channel_ids is None or channel_id in customer.channel_ids
            ):
                return customer
        return None

    def add_subscriber(
        self,
        email: str,
        now: datetime,
        first_name: str = "",
        last_name: str = "",
        source: str = "custom",
        channel_id: int = 1,
        consents: list[str] | None = None,
        order_id: int | None = None,
    ) -> Subscriber:
        """A new subscriber record (defaults: what BigCommerce gives one created through the API)."""
        subscriber = Subscriber(
            next(self.subscriber_ids),
            email,
            first_name,
            last_name,
            source,
            channel_id,
            list(consents or []),
            date_created=now,
            date_modified=now,
            order_id=order_id,
        )
        self.subscribers[subscriber.id] = subscriber
        self.touch()
        return subscriber

    def subscriber_by_email(self, email: str) -> Subscriber | None:
        wanted = email.strip().lower()
        for subscriber in self.subscribers.values():
            if subscriber.email.lower() == wanted:
                return subscriber
        return None

    def product(self, product_id: int) -> Product | None:
        """A product that exists now (a bulk one is made on read until it is changed)."""
        row = self.products.get(product_id)
        if row is not None:
            return row
        bulk = self.bulk_products
        if bulk is None or product_id not in bulk.ids or product_id in self.deleted_products:
            return None
        return bulk.product(product_id)

    def product_row(self, product_id: int) -> Product | None:
        """The product as a stored row, so a change to it lasts (a bulk product is kept from then on)."""
        row = self.product(product_id)
        if row is not None:
            self.products[product_id] = row
        return row

    def all_product_ids(self) -> list[int]:
        """Every product id in ascending order (cached per revision: 50,000 bulk products)."""

        def build() -> list[int]:
            ids = set(self.products)
            if self.bulk_products is not None:
                ids.update(self.bulk_products.ids)
            return sorted(ids - self.deleted_products)

        return self.cached(("product_ids",), build)

    def site_for_channel(self, channel_id: int) -> Site | None:
        for site in self.sites.values():
            if site.channel_id == channel_id:
                return site
        return None


def money(value: Decimal | int | float | str) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))
