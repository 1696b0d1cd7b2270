"""What shoppers (`storefront.Storefront`) and merchants (`admin.Admin`) do to a store: each action
changes the store and fires the webhooks BigCommerce fires for it. Events are queued while the lock is
held and delivered by the background thread after the action returns.

This module holds the steps both kinds of action share: customers, addresses and subscriptions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from smbc.sandbox.bigcommerce.render import v3
from smbc.sandbox.bigcommerce.state import (
    NEWSLETTER_CONSENT,
    Address,
    Customer,
    Json,
    Order,
    Product,
    StoreState,
    Subscriber,
    Variant,
)

if TYPE_CHECKING:
    from smbc.sandbox.bigcommerce.fake import FakeBigCommerce

K = TypeVar("K")
R = TypeVar("R")
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


def existing(rows: Mapping[K, R], key: K, what: str) -> R:
    """`rows[key]`, or an ActionError naming the missing `what`."""
    row = rows.get(key)
    if row is None:
        raise ActionError(f"no {what} {key}")
    return row


class StoreActions:
    # The channel an action happens on when none is named (a storefront sets its own).
    channel_id: int = 1

    def __init__(self, fake: FakeBigCommerce, store_hash: str) -> None:
        self.fake = fake
        self.store_hash = store_hash

    @property
    def state(self) -> StoreState:
        return self.fake.store(self.store_hash)

    def _emit(self, scope: str, data: Json) -> None:
        self.fake.emit(self.state, scope, data)

    def _emit_channel(self, channel_id: int, suffix: str, data: Json) -> None:
        # Channel-scoped events name only the resource (`{cart_id}`, `{order_id}`), not `{type, id}`.
        self.fake.emit(self.state, f"store/channel/{channel_id}/{suffix}", data)

    def _order_event(self, order: Order, action: str, **details: Any) -> None:
        """`store/order/{action}` and its channel-scoped twin."""
        self._emit(f"store/order/{action}", {"type": "order", "id": order.id, **details})
        self._emit_channel(order.channel_id, f"order/{action}", {"order_id": order.id})

    def _status_updated(self, order: Order, previous_status_id: int) -> None:
        status = {"previous_status_id": previous_status_id, "new_status_id": order.status_id}
        self._order_event(order, "statusUpdated", status=status)

    # -- stock ---------------------------------------------------------------------------------------------

    def _set_stock(self, product: Product, variant: Variant, level: int, by_order: bool) -> None:
        """A new stock level and its webhook: `store/product/inventory[/order]/updated` for a product
        without options, `store/sku/inventory[/order]/updated` for a variant of one with options. As the
        spec says, `value` is the change, not the new level; `method` is `relative` for an order."""
        change = level - variant.inventory_level
        variant.inventory_level = level
        self.state.modified(product, self.fake.now())
        inventory: Json = {
            "product_id": product.id,
            "method": "relative" if by_order else "absolute",
            "value": change,
        }
        kind = "order/updated" if by_order else "updated"
        if product.has_options:
            data = {"type": "sku", "id": variant.id, "inventory": {**inventory, "variant_id": variant.id}}
            self._emit(f"store/sku/inventory/{kind}", data)
        else:
            self._emit(
                f"store/product/inventory/{kind}",
                {"type": "product", "id": product.id, "inventory": inventory},
            )

    # -- customers -------------------------------------------------------------------------------------

    def _customer(self, customer_id: int) -> Customer:
        return existing(self.state.customers, customer_id, "customer")

    def register(
        self,
        email: str,
        first_name: str,
        last_name: str,
        newsletter: bool = False,
        phone: str = "",
        company: str = "",
        address: dict[str, Any] | None = None,
        channel_id: int | None = None,
    ) -> Json:
        """A new customer account: the one way the shopper's sign-up and the merchant's form make one.

        `customer/created`; `customer/address/created` when `address` is a non-empty dict; with
        `newsletter`, the subscription (`subscriber/created` or `/updated`)."""
        channel_id = channel_id or self.channel_id
        with self.fake.lock:
            store = self.state
            email = email.strip()
            if "@" not in email:
                raise ActionError(f"invalid email {email!r}")
            if store.customer_by_email(email, channel_id) is not None:
                raise ActionError(f"a customer with email {email} already exists")
            now = self.fake.now()
            customer = Customer(
                id=next(store.customer_ids),
                email=email,
                first_name=first_name,
                last_name=last_name,
                date_created=now,
                date_modified=now,
                origin_channel_id=channel_id,
                channel_ids=[channel_id] if channel_id != 1 else None,
                phone=phone,
                company=company,
            )
            store.customers[customer.id] = customer
            store.touch()
            self._emit("store/customer/created", {"type": "customer", "id": customer.id})
            if address:
                self._add_address(customer, address)
            if newsletter:
                self._set_subscription(email, True, channel_id, "storefront", first_name, last_name)
            return v3.customer_json(customer, {"addresses"})

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

    def update_customer(self, customer_id: int, **fields: Any) -> Json:
        """Change account fields (address changes go through `add_address`): `customer/updated`."""
        with self.fake.lock:
            customer = self._customer(customer_id)
            unknown = set(fields) - EDITABLE_CUSTOMER_FIELDS
            if unknown:
                raise ActionError(f"cannot change customer fields {sorted(unknown)}")
            self.state.modified(customer, self.fake.now(), fields)
            self._emit("store/customer/updated", {"type": "customer", "id": customer.id})
            return v3.customer_json(customer, {"addresses"})

    # -- newsletter subscriptions ----------------------------------------------------------------------

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
        """Create or update the subscriber for `email`: its consents, not the record, say who opted in."""
        store = self.state
        now = self.fake.now()
        subscriber = store.subscriber_by_email(email)
        consents = [NEWSLETTER_CONSENT] if subscribed else []
        if subscriber is None:
            if not subscribed and not create_unsubscribed:
                return None
            subscriber = store.add_subscriber(
                email.strip(), now, first_name, last_name, source, channel_id, consents, order_id
            )
            self._emit("store/subscriber/created", {"type": "subscriber", "id": subscriber.id})
            return subscriber
        if create_unsubscribed and not subscribed:
            return subscriber  # a checkout without the box ticked leaves an existing subscriber alone
        if subscriber.consents != consents:
            store.modified(subscriber, now, {"consents": consents})
            self._emit("store/subscriber/updated", {"type": "subscriber", "id": subscriber.id})
        return subscriber

    def _subscribe(
        self, email: str, channel_id: int, source: str, first_name: str = "", last_name: str = ""
    ) -> Json:
        with self.fake.lock:
            subscriber = self._set_subscription(email, True, channel_id, source, first_name, last_name)
            assert subscriber is not None  # subscribing always leaves a record
            return v3.subscriber_json(subscriber)

    def unsubscribe(self, email: str) -> Json | None:
        """Unsubscribing keeps the record with empty consents (what the storefront link does)."""
        with self.fake.lock:
            # The channel only matters for a new record, and unsubscribing never creates one.
            subscriber = self._set_subscription(email, False, channel_id=1)
            return v3.subscriber_json(subscriber) if subscriber else None
