"""What a shopper does on one storefront channel: an account, the newsletter, a cart, a checkout."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from smbc.sandbox.bigcommerce.actions import ActionError, StoreActions, existing
from smbc.sandbox.bigcommerce.render import v2, v3
from smbc.sandbox.bigcommerce.state import Cart, Customer, Json, LineItem, Order, OrderLine, money

if TYPE_CHECKING:
    from smbc.sandbox.bigcommerce.fake import FakeBigCommerce

AWAITING_FULFILLMENT = 11  # the status of a freshly paid order
SHIPPING = money("5.00")


class Storefront(StoreActions):
    """What a shopper does on one storefront channel."""

    def __init__(self, fake: FakeBigCommerce, store_hash: str, channel_id: int = 1) -> None:
        super().__init__(fake, store_hash)
        if channel_id not in fake.store(store_hash).channels:
            raise ActionError(f"store {store_hash} has no channel {channel_id}")
        self.channel_id = channel_id

    @property
    def url(self) -> str:
        return self.fake.storefront_url(self.store_hash, self.channel_id)

    # -- account and newsletter ------------------------------------------------------------------------

    def add_address(self, customer_id: int, **fields: Any) -> Json:
        with self.fake.lock:
            return v3.address_json(self._add_address(self._customer(customer_id), fields))

    def log_in(self, email: str, cart_id: str | None = None) -> Json:
        """The shopper signs in (no passwords in the fake); a guest cart is taken over (cart/updated)."""
        with self.fake.lock:
            customer = self.state.customer_by_email(email, self.channel_id)
            if customer is None:
                raise ActionError(f"no customer with email {email} on this storefront")
            cart = self.state.carts.get(cart_id) if cart_id else None
            if cart is not None and cart.customer_id != customer.id:
                cart.customer_id = customer.id
                cart.email = customer.email
                self._cart_changed(cart)
            return v3.customer_json(customer, {"addresses"})

    def subscribe(self, email: str, first_name: str = "", last_name: str = "") -> Json:
        return self._subscribe(email, self.channel_id, "storefront", first_name, last_name)

    # -- cart ------------------------------------------------------------------------------------------

    def _cart(self, cart_id: str) -> Cart:
        return existing(self.state.carts, cart_id, "cart")

    def _cart_json(self, cart: Cart) -> Json:
        return v3.cart_json(cart, self.fake.storefront_url(self.store_hash, cart.channel_id))

    def _cart_event(self, cart: Cart, action: str, **details: Any) -> None:
        """`store/cart/{action}` and its channel-scoped twin."""
        self._emit(f"store/cart/{action}", {"type": "cart", "id": cart.id, **details})
        self._emit_channel(cart.channel_id, f"cart/{action}", {"cart_id": cart.id})

    def _cart_changed(self, cart: Cart) -> None:
        cart.updated_time = self.fake.now()
        cart.version += 1
        self.state.touch()
        self._cart_event(cart, "updated")

    def _item_event(self, cart: Cart, item: LineItem, action: str) -> None:
        self._emit(
            f"store/cart/lineItem/{action}", {"type": "cart_line_item", "id": item.id, "cartId": cart.id}
        )
        self._emit_channel(
            cart.channel_id, f"cart/lineItem/{action}", {"cart_id": cart.id, "cart_item_id": item.id}
        )

    def _item(self, cart: Cart, item_id: str) -> LineItem:
        item = next((i for i in cart.line_items if i.id == item_id), None)
        if item is None:
            raise ActionError(f"no item {item_id} in cart {cart.id}")
        return item

    def add_to_cart(
        self,
        cart_id: str | None = None,
        product_id: int = 77,
        quantity: int = 1,
        customer_id: int | None = None,
        variant_id: int | None = None,
    ) -> Json:
        """Add a product (its default variant, or `variant_id`) to a new or existing cart."""
        with self.fake.lock:
            store = self.state
            product = store.product(product_id)
            if product is None:
                raise ActionError(f"no product {product_id}")
            variant = product.variant(variant_id)
            if variant is None:
                raise ActionError(f"product {product_id} has no variant {variant_id}")
            if quantity < 1:
                raise ActionError("quantity must be at least 1")
            if cart_id is None:
                now = self.fake.now()
                email = ""
                if customer_id:
                    email = self._customer(customer_id).email
                cart = Cart(str(uuid.uuid4()), self.channel_id, customer_id or 0, email, now, now)
                store.carts[cart.id] = cart
                self._cart_event(cart, "created")
            else:
                cart = self._cart(cart_id)
                if customer_id and not cart.customer_id:
                    cart.customer_id = customer_id
                    cart.email = self._customer(customer_id).email
            same_variant = next((i for i in cart.line_items if i.variant_id == variant.id), None)
            if same_variant is not None:
                same_variant.quantity += quantity
                self._item_event(cart, same_variant, "updated")
            else:
                item = LineItem(
                    id=str(uuid.uuid4()),
                    product_id=product.id,
                    variant_id=variant.id,
                    sku=variant.sku,
                    name=product.name,
                    quantity=quantity,
                    price=product.price_of(variant),
                )
                cart.line_items.append(item)
                self._item_event(cart, item, "created")
            self._cart_changed(cart)
            return self._cart_json(cart)

    def update_item(self, cart_id: str, item_id: str, quantity: int) -> Json:
        if quantity < 1:
            return self.remove_item(cart_id, item_id) or {}
        with self.fake.lock:
            cart = self._cart(cart_id)
            item = self._item(cart, item_id)
            item.quantity = quantity
            self._item_event(cart, item, "updated")
            self._cart_changed(cart)
            return self._cart_json(cart)

    def remove_item(self, cart_id: str, item_id: str) -> Json | None:
        """Remove a line; removing the last one deletes the cart (`store/cart/deleted`), returns None."""
        with self.fake.lock:
            cart = self._cart(cart_id)
            item = self._item(cart, item_id)
            cart.line_items.remove(item)
            self._item_event(cart, item, "deleted")
            if not cart.line_items:
                self.state.removed(self.state.carts, cart.id)
                self._cart_event(cart, "deleted")
                return None
            self._cart_changed(cart)
            return self._cart_json(cart)

    def set_cart_email(self, cart_id: str, email: str) -> Json:
        """A guest types their email at checkout."""
        with self.fake.lock:
            cart = self._cart(cart_id)
            cart.email = email.strip()
            self._cart_changed(cart)
            return self._cart_json(cart)

    def abandon(self, cart_id: str) -> str:
        """What BigCommerce does to a cart left alone for an hour: `store/cart/abandoned` with a token
        (GET /v3/abandoned-carts/{token} gives the cart id back). Returns the token."""
        with self.fake.lock:
            cart = self._cart(cart_id)
            token = uuid.uuid4().hex
            self.state.abandoned_carts[token] = cart.id
            self._cart_event(cart, "abandoned", token=token)
            return token

    def get_cart(self, cart_id: str) -> Json | None:
        with self.fake.lock:
            cart = self.state.carts.get(cart_id)
            return self._cart_json(cart) if cart else None

    def _take_stock(self, order: Order) -> None:
        """An order takes its items from stock (`store/.../inventory/order/updated`); a product or variant
        gone since the cart was filled has no stock to take."""
        for line in order.lines:
            product = self.state.product_row(line.product_id)
            variant = product.variant(line.variant_id) if product else None
            if product is not None and variant is not None:
                self._set_stock(
                    product, variant, max(0, variant.inventory_level - line.quantity), by_order=True
                )

    # -- checkout --------------------------------------------------------------------------------------

    def checkout(
        self,
        cart_id: str,
        customer_id: int | None = None,
        guest_email: str | None = None,
        newsletter: bool = False,
        billing: dict[str, str] | None = None,
    ) -> Json:
        """Place the order: `order/created`, `cart/converted` (cart gone), `order/statusUpdated` 0 -> 11.

        As on BigCommerce, the shopper's email gets a subscriber record even without the newsletter box
        (with empty consents); an existing subscriber is only changed when the box is ticked."""
        with self.fake.lock:
            store = self.state
            cart = self._cart(cart_id)
            buyer_id = customer_id or cart.customer_id
            customer = self._customer(buyer_id) if buyer_id else None
            email = customer.email if customer else (guest_email or cart.email or "").strip()
            if "@" not in email:
                raise ActionError("a guest checkout needs an email")
            now = self.fake.now()
            bill = {**billing_address(customer), **(billing or {}), "email": email}
            order_id = next(store.order_ids)
            lines = [
                OrderLine(id=next(store.order_line_ids), order_id=order_id, **i.purchase())
                for i in cart.line_items
            ]
            subtotal = money(sum((line.price * line.quantity for line in lines), Decimal("0")))
            order = Order(
                id=order_id,
                customer_id=customer.id if customer else 0,
                channel_id=cart.channel_id,
                status_id=AWAITING_FULFILLMENT,
                date_created=now,
                date_modified=now,
                billing=bill,
                lines=lines,
                subtotal=subtotal,
                shipping=SHIPPING,
                total=subtotal + SHIPPING,
                cart_id=cart.id,
                is_email_opt_in=newsletter,
            )
            store.orders[order.id] = order
            del store.carts[cart.id]
            store.converted_carts[cart.id] = order.id
            store.touch()
            self._order_event(order, "created")
            self._emit("store/cart/converted", {"type": "cart", "id": cart.id, "orderId": order.id})
            self._emit_channel(cart.channel_id, "cart/converted", {"cart_id": cart.id, "order_id": order.id})
            self._status_updated(order, previous_status_id=0)
            self._take_stock(order)
            self._set_subscription(
                email,
                newsletter,
                order.channel_id,
                source="order",
                first_name=bill["first_name"],
                last_name=bill["last_name"],
                order_id=order.id,
                create_unsubscribed=True,
            )
            return v2.order_json(order, self.fake.api_base(self.store_hash))


def billing_address(customer: Customer | None) -> dict[str, str]:
    """An order's billing address: the customer's first address, else the fake's default one."""
    bill = {
        "first_name": customer.first_name if customer else "Guest",
        "last_name": customer.last_name if customer else "Shopper",
        "company": customer.company if customer else "",
        "street_1": "1 Main Street",
        "street_2": "",
        "city": "Austin",
        "state": "Texas",
        "zip": "78701",
        "country": "United States",
        "country_iso2": "US",
        "phone": customer.phone if customer else "",
    }
    if customer and customer.addresses:
        a = customer.addresses[0]
        bill.update(
            street_1=a.address1,
            street_2=a.address2,
            city=a.city,
            state=a.state_or_province,
            zip=a.postal_code,
            country=a.country,
            country_iso2=a.country_code,
        )
    return bill
