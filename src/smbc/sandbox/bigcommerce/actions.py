"""Shopper (storefront) and merchant (admin) actions: each changes a store and fires the webhooks
BigCommerce documents for it (reference §2.3/§2.4). Events are queued while the lock is held and
delivered by the background thread after the action returns."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from smbc.sandbox.bigcommerce.render import v2, v3
from smbc.sandbox.bigcommerce.state import (
    ORDER_STATUSES,
    Address,
    Cart,
    Channel,
    Customer,
    LineItem,
    Order,
    OrderLine,
    Refund,
    Site,
    StoreState,
    Subscriber,
    money,
)

if TYPE_CHECKING:
    from smbc.sandbox.bigcommerce.fake import FakeBigCommerce

Json = dict[str, Any]
NEWSLETTER = "marketing_newsletter"
EDITABLE_CUSTOMER_FIELDS = frozenset(
    {
        "email",
        "first_name",
        "last_name",
        "company",
        "phone",
        "notes",
        "customer_group_id",
        "accepts_product_review_abandoned_cart_emails",
        "channel_ids",
    }
)


class ActionError(ValueError):
    """A shopper/admin action that BigCommerce would refuse (unknown id, bad input)."""


class _Actions:
    def __init__(self, fake: FakeBigCommerce, store_hash: str) -> None:
        self.fake = fake
        self.store_hash = store_hash

    @property
    def state(self) -> StoreState:
        return self.fake.store(self.store_hash)

    def _emit(self, scope: str, data: Json) -> None:
        self.fake.emit(self.state, scope, data)

    def _emit_channel(self, channel_id: int, suffix: str, data: Json) -> None:
        # Channel-scoped scopes carry a different `data` shape (reference §2.4).
        self.fake.emit(self.state, f"store/channel/{channel_id}/{suffix}", data)

    def _customer(self, customer_id: int) -> Customer:
        customer = self.state.customers.get(customer_id)
        if customer is None:
            raise ActionError(f"no customer {customer_id}")
        return customer

    def _new_customer(
        self, email: str, first_name: str, last_name: str, channel_id: int, **fields: Any
    ) -> Customer:
        store = self.state
        email = email.strip()
        if "@" not in email:
            raise ActionError(f"invalid email {email!r}")
        if store.customer_by_email(email, channel_id) is not None:
            raise ActionError(f"a customer with email {email} already exists")
        now = self.fake.now()
        address = fields.pop("address", None)
        customer = Customer(
            id=next(store.customer_ids),
            email=email,
            first_name=first_name,
            last_name=last_name,
            date_created=now,
            date_modified=now,
            origin_channel_id=channel_id,
            channel_ids=[channel_id] if channel_id != 1 else None,
            phone=fields.pop("phone", "") or "",
            company=fields.pop("company", "") or "",
        )
        store.customers[customer.id] = customer
        store.touch()
        self._emit("store/customer/created", {"type": "customer", "id": customer.id})
        if address:
            self._add_address(customer, address)
        return customer

    def _add_address(self, customer: Customer, fields: dict[str, Any]) -> Address:
        store = self.state
        address = Address(
            id=next(store.address_ids),
            customer_id=customer.id,
            first_name=fields.get("first_name", customer.first_name),
            last_name=fields.get("last_name", customer.last_name),
            address1=fields.get("address1", "1 Main Street"),
            city=fields.get("city", "Austin"),
            postal_code=fields.get("postal_code", "78701"),
            country_code=fields.get("country_code", "US"),
            country=fields.get("country", "United States"),
            state_or_province=fields.get("state_or_province", "Texas"),
            address2=fields.get("address2", ""),
            company=fields.get("company", customer.company),
            phone=fields.get("phone", customer.phone),
        )
        customer.addresses.append(address)
        store.touch()
        self._emit(
            "store/customer/address/created",
            {"type": "customer", "id": address.id, "address": {"customer_id": customer.id}},
        )
        return address

    def _update_customer(self, customer_id: int, fields: dict[str, Any]) -> Customer:
        customer = self._customer(customer_id)
        unknown = set(fields) - EDITABLE_CUSTOMER_FIELDS
        if unknown:
            raise ActionError(f"cannot change customer fields {sorted(unknown)}")
        for name, value in fields.items():
            setattr(customer, name, value)
        customer.date_modified = self.fake.now()
        self.state.touch()
        self._emit("store/customer/updated", {"type": "customer", "id": customer.id})
        return customer

    def _set_subscription(
        self,
        email: str,
        subscribed: bool,
        channel_id: int,
        source: str = "storefront",
        first_name: str = "",
        last_name: str = "",
        order_id: int | None = None,
        create_unsubscribed: bool = False,
    ) -> Subscriber | None:
        """Create or update the subscriber for `email` (consents are the opt-in truth, reference §3.4)."""
        store = self.state
        now = self.fake.now()
        subscriber = store.subscriber_by_email(email)
        consents = [NEWSLETTER] if subscribed else []
        if subscriber is None:
            if not subscribed and not create_unsubscribed:
                return None
            subscriber = Subscriber(
                id=next(store.subscriber_ids),
                email=email.strip(),
                first_name=first_name,
                last_name=last_name,
                source=source,
                channel_id=channel_id,
                consents=consents,
                date_created=now,
                date_modified=now,
                order_id=order_id,
            )
            store.subscribers[subscriber.id] = subscriber
            store.touch()
            self._emit("store/subscriber/created", {"type": "subscriber", "id": subscriber.id})
            return subscriber
        if create_unsubscribed and not subscribed:
            return subscriber  # a checkout without the box ticked leaves an existing subscriber alone
        if subscriber.consents != consents:
            subscriber.consents = consents
            subscriber.date_modified = now
            store.touch()
            self._emit("store/subscriber/updated", {"type": "subscriber", "id": subscriber.id})
        return subscriber


class Storefront(_Actions):
    """What a shopper does on one storefront channel."""

    def __init__(self, fake: FakeBigCommerce, store_hash: str, channel_id: int = 1) -> None:
        super().__init__(fake, store_hash)
        if channel_id not in fake.store(store_hash).channels:
            raise ActionError(f"store {store_hash} has no channel {channel_id}")
        self.channel_id = channel_id

    @property
    def url(self) -> str:
        return self.fake.storefront_url(self.store_hash, self.channel_id)

    def register(
        self,
        email: str,
        first_name: str,
        last_name: str,
        newsletter: bool = False,
        phone: str = "",
        company: str = "",
        address: dict[str, Any] | None = None,
    ) -> Json:
        with self.fake.lock:
            customer = self._new_customer(
                email, first_name, last_name, self.channel_id, phone=phone, company=company, address=address
            )
            if newsletter:
                self._set_subscription(
                    customer.email, True, self.channel_id, "storefront", first_name, last_name
                )
            return v3.customer_json(customer, {"addresses"})

    def update_customer(self, customer_id: int, **fields: Any) -> Json:
        """The shopper edits their account (address changes go through `add_address`)."""
        with self.fake.lock:
            return v3.customer_json(self._update_customer(customer_id, fields), {"addresses"})

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
        with self.fake.lock:
            sub = self._set_subscription(email, True, self.channel_id, "storefront", first_name, last_name)
            assert sub is not None
            return v3.subscriber_json(sub)

    def unsubscribe(self, email: str) -> Json | None:
        """Unsubscribing keeps the record with empty consents (what the storefront link does)."""
        with self.fake.lock:
            sub = self._set_subscription(email, False, self.channel_id)
            return v3.subscriber_json(sub) if sub else None

    # -- cart ------------------------------------------------------------------------------------------

    def _cart(self, cart_id: str) -> Cart:
        cart = self.state.carts.get(cart_id)
        if cart is None:
            raise ActionError(f"no cart {cart_id}")
        return cart

    def _cart_json(self, cart: Cart) -> Json:
        return v3.cart_json(cart, self.fake.storefront_url(self.store_hash, cart.channel_id))

    def _cart_changed(self, cart: Cart) -> None:
        cart.updated_time = self.fake.now()
        cart.version += 1
        self.state.touch()
        self._emit("store/cart/updated", {"type": "cart", "id": cart.id})
        self._emit_channel(cart.channel_id, "cart/updated", {"cart_id": cart.id})

    def _item_event(self, cart: Cart, item: LineItem, action: str) -> None:
        self._emit(
            f"store/cart/lineItem/{action}", {"type": "cart_line_item", "id": item.id, "cartId": cart.id}
        )
        self._emit_channel(
            cart.channel_id, f"cart/lineItem/{action}", {"cart_id": cart.id, "cart_item_id": item.id}
        )

    def add_to_cart(
        self,
        cart_id: str | None = None,
        product_id: int = 77,
        quantity: int = 1,
        customer_id: int | None = None,
    ) -> Json:
        with self.fake.lock:
            store = self.state
            product = store.products.get(product_id)
            if product is None:
                raise ActionError(f"no product {product_id}")
            if quantity < 1:
                raise ActionError("quantity must be at least 1")
            if cart_id is None:
                now = self.fake.now()
                email = ""
                if customer_id:
                    email = self._customer(customer_id).email
                cart = Cart(str(uuid.uuid4()), self.channel_id, customer_id or 0, email, now, now)
                store.carts[cart.id] = cart
                self._emit("store/cart/created", {"type": "cart", "id": cart.id})
                self._emit_channel(cart.channel_id, "cart/created", {"cart_id": cart.id})
            else:
                cart = self._cart(cart_id)
                if customer_id and not cart.customer_id:
                    cart.customer_id = customer_id
                    cart.email = self._customer(customer_id).email
            existing = next((i for i in cart.line_items if i.product_id == product_id), None)
            if existing is not None:
                existing.quantity += quantity
                self._item_event(cart, existing, "updated")
            else:
                item = LineItem(
                    str(uuid.uuid4()),
                    product.id,
                    product.variant_id,
                    product.sku,
                    product.name,
                    quantity,
                    product.price,
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
            item = next((i for i in cart.line_items if i.id == item_id), None)
            if item is None:
                raise ActionError(f"no item {item_id} in cart {cart_id}")
            item.quantity = quantity
            self._item_event(cart, item, "updated")
            self._cart_changed(cart)
            return self._cart_json(cart)

    def remove_item(self, cart_id: str, item_id: str) -> Json | None:
        """Remove a line; removing the last one deletes the cart (`store/cart/deleted`), returns None."""
        with self.fake.lock:
            cart = self._cart(cart_id)
            item = next((i for i in cart.line_items if i.id == item_id), None)
            if item is None:
                raise ActionError(f"no item {item_id} in cart {cart_id}")
            cart.line_items.remove(item)
            self._item_event(cart, item, "deleted")
            if not cart.line_items:
                del self.state.carts[cart.id]
                self.state.touch()
                self._emit("store/cart/deleted", {"type": "cart", "id": cart.id})
                self._emit_channel(cart.channel_id, "cart/deleted", {"cart_id": cart.id})
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
            self._emit("store/cart/abandoned", {"type": "cart", "id": cart.id, "token": token})
            self._emit_channel(cart.channel_id, "cart/abandoned", {"cart_id": cart.id})
            return token

    def get_cart(self, cart_id: str) -> Json | None:
        with self.fake.lock:
            cart = self.state.carts.get(cart_id)
            return self._cart_json(cart) if cart else None

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
            customer = (
                self._customer(customer_id or cart.customer_id) if (customer_id or cart.customer_id) else None
            )
            email = customer.email if customer else (guest_email or cart.email or "").strip()
            if "@" not in email:
                raise ActionError("a guest checkout needs an email")
            now = self.fake.now()
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
            bill.update(billing or {})
            bill["email"] = email
            order_id = next(store.order_ids)
            lines = [
                OrderLine(
                    next(store.order_line_ids),
                    order_id,
                    i.product_id,
                    i.variant_id,
                    i.sku,
                    i.name,
                    i.quantity,
                    i.price,
                )
                for i in cart.line_items
            ]
            subtotal = money(sum((line.price * line.quantity for line in lines), Decimal("0")))
            shipping = money("5.00")
            order = Order(
                id=order_id,
                customer_id=customer.id if customer else 0,
                channel_id=cart.channel_id,
                status_id=11,
                date_created=now,
                date_modified=now,
                billing=bill,
                lines=lines,
                subtotal=subtotal,
                shipping=shipping,
                total=subtotal + shipping,
                cart_id=cart.id,
                is_email_opt_in=newsletter,
            )
            store.orders[order.id] = order
            del store.carts[cart.id]
            store.converted_carts[cart.id] = order.id
            store.touch()
            self._emit("store/order/created", {"type": "order", "id": order.id})
            self._emit_channel(order.channel_id, "order/created", {"order_id": order.id})
            self._emit("store/cart/converted", {"type": "cart", "id": cart.id, "orderId": order.id})
            self._emit_channel(cart.channel_id, "cart/converted", {"cart_id": cart.id, "order_id": order.id})
            self._emit(
                "store/order/statusUpdated",
                {"type": "order", "id": order.id, "status": {"previous_status_id": 0, "new_status_id": 11}},
            )
            self._emit_channel(order.channel_id, "order/statusUpdated", {"order_id": order.id})
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


class Admin(_Actions):
    """What the merchant does in the control panel."""

    def create_customer(
        self,
        email: str,
        first_name: str = "Admin",
        last_name: str = "Created",
        channel_id: int = 1,
        phone: str = "",
        company: str = "",
        address: dict[str, Any] | None = None,
    ) -> Json:
        with self.fake.lock:
            customer = self._new_customer(
                email, first_name, last_name, channel_id, phone=phone, company=company, address=address
            )
            return v3.customer_json(customer, {"addresses"})

    def update_customer(self, customer_id: int, **fields: Any) -> Json:
        with self.fake.lock:
            return v3.customer_json(self._update_customer(customer_id, fields), {"addresses"})

    def delete_customer(self, customer_id: int) -> None:
        with self.fake.lock:
            self._customer(customer_id)
            del self.state.customers[customer_id]
            self.state.touch()
            self._emit("store/customer/deleted", {"type": "customer", "id": customer_id})

    def subscribe(self, email: str, channel_id: int = 1) -> Json:
        with self.fake.lock:
            sub = self._set_subscription(email, True, channel_id, "custom")
            assert sub is not None
            return v3.subscriber_json(sub)

    def unsubscribe(self, email: str) -> Json | None:
        with self.fake.lock:
            sub = self._set_subscription(email, False, 1)
            return v3.subscriber_json(sub) if sub else None

    def _order(self, order_id: int) -> Order:
        order = self.state.orders.get(order_id)
        if order is None:
            raise ActionError(f"no order {order_id}")
        return order

    def _status_change(self, order: Order, status_id: int) -> None:
        previous = order.status_id
        order.status_id = status_id
        order.date_modified = self.fake.now()
        self.state.touch()
        self._emit("store/order/updated", {"type": "order", "id": order.id})
        self._emit_channel(order.channel_id, "order/updated", {"order_id": order.id})
        if previous != status_id:
            self._emit(
                "store/order/statusUpdated",
                {
                    "type": "order",
                    "id": order.id,
                    "status": {"previous_status_id": previous, "new_status_id": status_id},
                },
            )
            self._emit_channel(order.channel_id, "order/statusUpdated", {"order_id": order.id})

    def set_order_status(self, order_id: int, status_id: int) -> Json:
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
            if order.refunded_amount >= order.total:
                for line in order.lines:
                    line.quantity_refunded = line.quantity
            self._emit(
                "store/order/refund/created",
                {"type": "order", "id": order.id, "refund": {"refund_id": refund.id}},
            )
            self._emit_channel(order.channel_id, "order/refund/created", {"order_id": order.id})
            self._status_change(order, 4 if order.refunded_amount >= order.total else 14)
            return v3.refund_json(refund)

    def archive_order(self, order_id: int) -> None:
        with self.fake.lock:
            order = self._order(order_id)
            order.is_deleted = True
            order.date_modified = self.fake.now()
            self.state.touch()
            self._emit("store/order/archived", {"type": "order", "id": order.id})
            self._emit_channel(order.channel_id, "order/archived", {"order_id": order.id})

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
            channel = self.state.channels.get(channel_id)
            if channel is None:
                raise ActionError(f"no channel {channel_id}")
            for name in ("name", "status", "platform", "is_visible"):
                if name in fields:
                    setattr(channel, name, fields[name])
            channel.date_modified = self.fake.now()
            self.state.touch()
            self._emit("store/channel/updated", {"type": "channel", "id": channel.id})
            return v3.channel_json(channel)

    def delete_script(self, script_uuid: str) -> None:
        """The merchant deletes a script in Script Manager (no webhook on BigCommerce either)."""
        with self.fake.lock:
            if self.state.scripts.pop(script_uuid, None) is None:
                raise ActionError(f"no script {script_uuid}")
            self.state.touch()

    def set_script_consent(self, script_uuid: str, consent_category: str) -> None:
        with self.fake.lock:
            script = self.state.scripts.get(script_uuid)
            if script is None:
                raise ActionError(f"no script {script_uuid}")
            script.consent_category = consent_category
            script.date_modified = self.fake.now()
            self.state.touch()

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
