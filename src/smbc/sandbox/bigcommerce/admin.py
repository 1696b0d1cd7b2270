"""What the merchant does in the control panel: customers, orders and refunds, products, channels,
scripts and store settings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from smbc.sandbox.bigcommerce.actions import ActionError, StoreActions, existing
from smbc.sandbox.bigcommerce.render import catalog, v2, v3
from smbc.sandbox.bigcommerce.state import (
    ORDER_STATUSES,
    Channel,
    Json,
    Order,
    Product,
    Refund,
    Site,
    Variant,
    money,
)

REFUNDED = 4
PARTIALLY_REFUNDED = 14
# Product fields the merchant can edit (`update_product`), and what each must be.
EDITABLE_PRODUCT_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "description": str,
    "price": (Decimal, int, float, str),
    "sale_price": (Decimal, int, float, str),
    "is_visible": bool,
    "availability": str,
    "brand_id": int,
    "categories": list,
    "channel_ids": list,
    "custom_url": str,
}
AVAILABILITIES = ("available", "disabled", "preorder")


class Admin(StoreActions):
    """What the merchant does in the control panel."""

    # -- customers and subscribers ---------------------------------------------------------------------

    # The merchant's "add customer" form: the same one entry point as a shopper's sign-up.
    create_customer = StoreActions.register

    def delete_customer(self, customer_id: int) -> None:
        with self.fake.lock:
            self._customer(customer_id)
            self.state.removed(self.state.customers, customer_id)
            self._emit("store/customer/deleted", {"type": "customer", "id": customer_id})

    def subscribe(self, email: str, channel_id: int = 1) -> Json:
        return self._subscribe(email, channel_id, "custom")

    # -- orders ----------------------------------------------------------------------------------------

    def _order(self, order_id: int) -> Order:
        return existing(self.state.orders, order_id, "order")

    def _status_change(self, order: Order, status_id: int) -> None:
        previous = order.status_id
        self.state.modified(order, self.fake.now(), {"status_id": status_id})
        self._order_event(order, "updated")
        if previous != status_id:
            self._status_updated(order, previous)

    def set_order_status(self, order_id: int, status_id: int) -> Json:
        """`order/updated`, and `order/statusUpdated` when the status changes."""
        if status_id not in ORDER_STATUSES:
            raise ActionError(f"no order status {status_id}")
        with self.fake.lock:
            order = self._order(order_id)
            self._status_change(order, status_id)
            return v2.order_json(order, self.fake.api_base(self.store_hash))

    def refund(self, order_id: int, amount: Decimal | float | str | None = None, reason: str = "") -> Json:
        """Refund all (status 4 Refunded) or part (status 14 Partially Refunded) of an order."""
        with self.fake.lock:
            order = self._order(order_id)
            left = order.total - order.refunded_amount
            value = left if amount is None else money(amount)
            if value <= 0 or value > left:
                raise ActionError(f"refund amount must be between 0.01 and {left}")
            store = self.state
            refund = Refund(next(store.refund_ids), order.id, value, self.fake.now(), reason)
            store.refunds[refund.id] = refund
            order.refunded_amount += value
            fully = order.refunded_amount >= order.total
            if fully:
                for line in order.lines:
                    line.quantity_refunded = line.quantity
            self._order_event(order, "refund/created", refund={"refund_id": refund.id})
            self._status_change(order, REFUNDED if fully else PARTIALLY_REFUNDED)
            return v3.refund_json(refund)

    def archive_order(self, order_id: int) -> None:
        """`order/archived`; the order then shows only with `is_deleted=true`."""
        with self.fake.lock:
            order = self._order(order_id)
            self.state.modified(order, self.fake.now(), {"is_deleted": True})
            self._order_event(order, "archived")

    # -- products (each change fires the product webhooks; a bulk product becomes a stored row) ---------

    def _product(self, product_id: int) -> Product:
        product = self.state.product_row(product_id)
        if product is None:
            raise ActionError(f"no product {product_id}")
        return product

    def _product_json(self, product: Product) -> Json:
        return catalog.product_json(product, self.fake.base_url, {"variants", "images", "channels"})

    def create_product(
        self,
        name: str,
        sku: str,
        price: Decimal | float | str,
        stock: int = 10,
        channel_ids: list[int] | None = None,
        categories: list[int] | None = None,
        description: str = "",
    ) -> Json:
        """A product without options (one base variant): `store/product/created`."""
        with self.fake.lock:
            store = self.state
            if not name.strip() or not sku.strip():
                raise ActionError("a product needs a name and a SKU")
            if stock < 0:
                raise ActionError("stock must not be negative")
            now = self.fake.now()
            product_id = next(store.product_ids)
            variant = Variant(next(store.variant_ids), product_id, sku.strip(), stock)
            product = Product(
                product_id,
                name.strip(),
                sku.strip(),
                money(price),
                [variant],
                now,
                now,
                description=description,
                categories=list(categories or [20]),
                channel_ids=list(channel_ids or [1]),
                custom_url=f"/{'-'.join(name.lower().split())}-{product_id}/",
            )
            store.products[product_id] = product
            store.touch()
            self._emit("store/product/created", {"type": "product", "id": product_id})
            return self._product_json(product)

    def update_product(self, product_id: int, **fields: Any) -> Json:
        """Change product fields (see EDITABLE_PRODUCT_FIELDS): `store/product/updated`."""
        with self.fake.lock:
            for name, value in fields.items():
                wanted = EDITABLE_PRODUCT_FIELDS.get(name)
                if wanted is None:
                    raise ActionError(f"cannot change product field {name!r}")
                if not isinstance(value, wanted) or (name == "name" and not str(value).strip()):
                    raise ActionError(f"invalid value for {name}: {value!r}")
                if name == "availability" and value not in AVAILABILITIES:
                    raise ActionError(f"availability must be one of {', '.join(AVAILABILITIES)}")
            product = self._product(product_id)
            prices = {name: money(fields[name]) for name in ("price", "sale_price") if name in fields}
            self.state.modified(product, self.fake.now(), {**fields, **prices})
            self._emit("store/product/updated", {"type": "product", "id": product_id})
            return self._product_json(product)

    def set_stock(self, product_id: int, level: int, variant_id: int | None = None) -> Json:
        """Set a stock level: `store/product/inventory/updated` for a product without options,
        `store/sku/inventory/updated` for a variant of one with options (stock is kept per variant)."""
        if level < 0:
            raise ActionError("stock must not be negative")
        with self.fake.lock:
            product = self._product(product_id)
            if product.has_options and variant_id is None:
                raise ActionError(f"product {product_id} keeps stock per variant: name the variant")
            variant = product.variant(variant_id)
            if variant is None:
                raise ActionError(f"product {product_id} has no variant {variant_id}")
            self._set_stock(product, variant, level, by_order=False)
            return self._product_json(product)

    def delete_product(self, product_id: int) -> None:
        """`store/product/deleted`; the product then answers 404."""
        with self.fake.lock:
            store = self.state
            self._product(product_id)
            store.deleted_products.add(product_id)
            store.removed(store.products, product_id)
            self._emit("store/product/deleted", {"type": "product", "id": product_id})

    # -- channels --------------------------------------------------------------------------------------

    def create_channel(
        self, name: str, type: str = "storefront", platform: str = "bigcommerce", status: str = "active"
    ) -> Json:
        """A new storefront channel with its own site (fires `store/channel/created`)."""
        with self.fake.lock:
            store = self.state
            now = self.fake.now()
            channel = Channel(
                next(store.channel_ids), name, now, now, type=type, platform=platform, status=status
            )
            store.channels[channel.id] = channel
            site = Site(next(store.site_ids), channel.id, now, now)
            store.sites[site.id] = site
            store.touch()
            self._emit("store/channel/created", {"type": "channel", "id": channel.id})
            return v3.channel_json(channel)

    def update_channel(self, channel_id: int, **fields: Any) -> Json:
        with self.fake.lock:
            channel = existing(self.state.channels, channel_id, "channel")
            editable = {k: v for k, v in fields.items() if k in ("name", "status", "platform", "is_visible")}
            self.state.modified(channel, self.fake.now(), editable)
            self._emit("store/channel/updated", {"type": "channel", "id": channel.id})
            return v3.channel_json(channel)

    # -- scripts and settings (no webhooks on BigCommerce either, but for the store name) ----------------

    def delete_script(self, script_uuid: str) -> None:
        """The merchant deletes a script in Script Manager."""
        with self.fake.lock:
            existing(self.state.scripts, script_uuid, "script")
            self.state.removed(self.state.scripts, script_uuid)

    def set_script_consent(self, script_uuid: str, consent_category: str) -> None:
        with self.fake.lock:
            script = existing(self.state.scripts, script_uuid, "script")
            self.state.modified(script, self.fake.now(), {"consent_category": consent_category})

    def set_consent_banner(self, enabled: bool) -> None:
        """Turn the storefront cookie-consent banner on or off (Settings > Privacy)."""
        with self.fake.lock:
            self.state.consent_banner = enabled
            self.state.touch()

    def update_store_information(self, name: str) -> None:
        with self.fake.lock:
            self.state.name = name
            self.state.touch()
            self._emit("store/information/updated", {"type": "store"})
