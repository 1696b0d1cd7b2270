"""Deterministic bulk data for a store: customers (each with an address and a subscriber record)
and orders over a date range. Rows are built directly (no HTTP, no webhooks), so 100,000 of each
take seconds."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from smbc.core.clock import get_clock
from smbc.sandbox.bigcommerce.catalog import EVERYDAY_PRODUCT_IDS
from smbc.sandbox.bigcommerce.state import (
    NEWSLETTER_CONSENT,
    Address,
    Customer,
    Order,
    OrderLine,
    Refund,
    StoreState,
    Subscriber,
)

FIRST_NAMES = (
    "Ada",
    "Ben",
    "Cleo",
    "Dan",
    "Eva",
    "Finn",
    "Gia",
    "Hugo",
    "Ines",
    "Jon",
    "Kai",
    "Lena",
    "Milo",
    "Nora",
    "Olek",
    "Pia",
    "Quinn",
    "Rosa",
    "Sven",
    "Tara",
    "Ugo",
    "Vera",
    "Wim",
    "Xena",
    "Yuri",
    "Zoe",
)
LAST_NAMES = (
    "Nowak",
    "Smith",
    "Garcia",
    "Kowalski",
    "Muller",
    "Rossi",
    "Dubois",
    "Silva",
    "Jensen",
    "Novak",
    "Horvat",
    "Papas",
    "Murphy",
    "Kim",
    "Tanaka",
    "Olsen",
    "Berg",
    "Costa",
    "Ivanova",
    "Weber",
)
CITIES = (
    ("Austin", "Texas", "78701"),
    ("Denver", "Colorado", "80202"),
    ("Boston", "Massachusetts", "02108"),
    ("Seattle", "Washington", "98101"),
    ("Miami", "Florida", "33101"),
)
# Mostly "paid" statuses, some pending/cancelled/refunded, as a real store looks.
ORDER_STATUS_WEIGHTS = ((10, 30), (11, 25), (2, 20), (9, 5), (1, 5), (5, 5), (4, 3), (14, 2), (7, 5))
NEWSLETTER_SHARE = 0.6
GUEST_SHARE = 0.2


def _as_datetime(value: date | datetime, end_of_day: bool) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    moment = time(23, 59, 59) if end_of_day else time(0, 0, 0)
    return datetime.combine(value, moment, tzinfo=UTC)


def _spread(rng: random.Random, n: int, start: datetime, end: datetime) -> list[datetime]:
    """`n` sorted whole-second moments between start and end (inclusive)."""
    span = max(0, int((end - start).total_seconds()))
    return [start + timedelta(seconds=s) for s in sorted(rng.randint(0, span) for _ in range(n))]


def seed_store(
    store: StoreState,
    customers: int,
    orders: int,
    start: date | datetime | None,
    end: date | datetime | None,
    seed: int,
    subscribers: int | None = None,
) -> dict[str, int]:
    """Add `customers` customers, `subscribers` (default: one per customer) subscribers and `orders` orders.

    Same arguments on a fresh store give the same rows. Returns how many of each were added."""
    rng = random.Random(seed)
    end_dt = _as_datetime(end, True) if end else get_clock().now().astimezone(UTC)
    start_dt = _as_datetime(start, False) if start else end_dt - timedelta(days=365)
    if start_dt > end_dt:
        raise ValueError("start must not be after end")
    subscribers = customers if subscribers is None else min(subscribers, customers)
    new_customers: list[Customer] = []
    for created in _spread(rng, customers, start_dt, end_dt):
        customer_id = next(store.customer_ids)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        modified = min(end_dt, created + timedelta(seconds=rng.randint(0, 30 * 86400)))
        city, state, postal = rng.choice(CITIES)
        customer = Customer(
            id=customer_id,
            email=f"{first.lower()}.{last.lower()}.{customer_id}@seed.sandbox.test",
            first_name=first,
            last_name=last,
            date_created=created,
            date_modified=modified,
            phone=f"+1555{customer_id % 10_000_000:07d}",
        )
        customer.addresses.append(
            Address(
                next(store.address_ids),
                customer_id,
                first,
                last,
                f"{rng.randint(1, 999)} Main St",
                city,
                postal,
                state_or_province=state,
            )
        )
        store.customers[customer_id] = customer
        new_customers.append(customer)
    for customer in new_customers[:subscribers]:
        subscriber_id = next(store.subscriber_ids)
        consents = [NEWSLETTER_CONSENT] if rng.random() < NEWSLETTER_SHARE else []
        store.subscribers[subscriber_id] = Subscriber(
            subscriber_id,
            customer.email,
            customer.first_name,
            customer.last_name,
            "storefront",
            1,
            consents,
            customer.date_created,
            customer.date_modified,
        )
    products = [store.products[i] for i in EVERYDAY_PRODUCT_IDS if i in store.products]
    statuses = [s for s, _ in ORDER_STATUS_WEIGHTS]
    weights = [w for _, w in ORDER_STATUS_WEIGHTS]
    for created in _spread(rng, orders, start_dt, end_dt):
        order_id = next(store.order_ids)
        buyer = rng.choice(new_customers) if new_customers and rng.random() >= GUEST_SHARE else None
        lines = []
        for product in rng.sample(products, rng.randint(1, min(3, len(products)))):
            lines.append(
                OrderLine(
                    id=next(store.order_line_ids),
                    order_id=order_id,
                    product_id=product.id,
                    variant_id=product.variant_id,
                    sku=product.sku,
                    name=product.name,
                    quantity=rng.randint(1, 3),
                    price=product.price,
                )
            )
        subtotal = sum((line.price * line.quantity for line in lines), Decimal("0"))
        shipping = Decimal("5.00")
        if buyer is not None:
            first, last, email = buyer.first_name, buyer.last_name, buyer.email
        else:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"guest.{order_id}@seed.sandbox.test"
        status_id = rng.choices(statuses, weights)[0]
        total = subtotal + shipping
        channel_id = 1 if rng.random() < 0.8 else 2  # drawn in this order: the same store as before
        modified = min(end_dt, created + timedelta(seconds=rng.randint(0, 7 * 86400)))
        refunded = total if status_id == 4 else (Decimal("5.00") if status_id == 14 else Decimal("0"))
        if refunded:  # what the refund that set the status left: one refund, made when the order changed
            refund = Refund(next(store.refund_ids), order_id, refunded, modified)
            store.refunds[refund.id] = refund
        store.orders[order_id] = Order(
            id=order_id,
            customer_id=buyer.id if buyer else 0,
            channel_id=channel_id,
            status_id=status_id,
            date_created=created,
            date_modified=modified,
            billing={
                "first_name": first,
                "last_name": last,
                "street_1": "1 Main St",
                "city": "Austin",
                "state": "Texas",
                "zip": "78701",
                "country": "United States",
                "country_iso2": "US",
                "email": email,
            },
            lines=lines,
            subtotal=subtotal,
            shipping=shipping,
            total=total,
            is_email_opt_in=rng.random() < 0.3,
            refunded_amount=refunded,
        )
    store.touch()
    return {"customers": customers, "subscribers": subscribers, "orders": orders}
