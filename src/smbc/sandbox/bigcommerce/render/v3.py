"""v3 answers: customers, subscribers, refunds, carts, scripts, webhooks, channels and sites."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from smbc.sandbox.bigcommerce.render.formats import iso, v3_money
from smbc.sandbox.bigcommerce.state import (
    ENABLED_CHANNEL_STATUSES,
    Address,
    Cart,
    Channel,
    Customer,
    Hook,
    Json,
    Refund,
    Script,
    Site,
    Subscriber,
)


@cache
def _field_names(row_type: type, omit: frozenset[str]) -> tuple[str, ...]:
    return tuple(f.name for f in fields(row_type) if f.name not in omit)


# How a field's value is written, by its type: dates in ISO-8601, lists and dicts copied.
_CONVERSIONS: dict[type, Callable[[Any], Any]] = {datetime: iso, list: list.copy, dict: dict.copy}


def fields_json(row: Any, omit: frozenset[str] = frozenset()) -> Json:
    """Every field of a state row under its own name (where BigCommerce's names are the fake's)."""
    out: Json = {}
    for name in _field_names(type(row), omit):
        value = getattr(row, name)
        convert = _CONVERSIONS.get(type(value))
        out[name] = convert(value) if convert else value
    return out


def address_json(address: Address) -> Json:
    return fields_json(address)


def customer_json(customer: Customer, include: AbstractSet[str] = frozenset()) -> Json:
    out = fields_json(customer, omit=frozenset({"addresses", "channel_ids"}))
    out.update(
        tax_exempt_category="",
        address_count=len(customer.addresses),
        attribute_count=0,
        authentication={"force_password_reset": False},
    )
    if customer.channel_ids is not None:
        # Global customers (access to every channel) have no list; the schema does not allow null here.
        out["channel_ids"] = list(customer.channel_ids)
    if "addresses" in include:
        out["addresses"] = [address_json(a) for a in customer.addresses[:10]]
    if "attributes" in include:
        out["attributes"] = []
    if "formfields" in include:
        out["form_fields"] = []
    if "storecredit" in include:
        out["store_credit_amounts"] = [{"amount": 0}]
    return out


def subscriber_json(subscriber: Subscriber) -> Json:
    return fields_json(subscriber)


def refund_json(refund: Refund, single: bool = False) -> Json:
    """`single`: GET /orders/payment_actions/refunds/{id}, whose spec types `requested_amount` as a string
    (the list endpoints type it as a number)."""
    amount = v3_money(refund.amount)
    requested: float | str = f"{refund.amount:.2f}" if single else amount
    return {
        "id": refund.id,
        "order_id": refund.order_id,
        "user_id": 0,
        "created": iso(refund.created),
        "reason": refund.reason,
        "total_amount": amount,
        "total_tax": 0,
        "uses_merchant_override_values": False,
        "items": [
            {
                "item_type": "ORDER",
                "item_id": refund.order_id,
                "reason": refund.reason,
                "requested_amount": requested,
            }
        ],
        "payments": [
            {
                "id": refund.id,
                "provider_id": "testgateway",
                "amount": amount,
                "offline": False,
                "is_declined": False,
                "declined_message": "",
            }
        ],
    }


def cart_json(cart: Cart, storefront_url: str, include: AbstractSet[str] = frozenset()) -> Json:
    items = []
    total = Decimal("0")
    for item in cart.line_items:
        extended = item.price * item.quantity
        total += extended
        price = v3_money(item.price)
        items.append(
            {
                "id": item.id,
                "variant_id": item.variant_id,
                "product_id": item.product_id,
                "sku": item.sku,
                "name": item.name,
                "url": f"{storefront_url}/products/{item.product_id}/",
                "quantity": item.quantity,
                "taxable": True,
                "image_url": f"{storefront_url}/products/{item.product_id}/image.png",
                "discounts": [],
                "coupons": [],
                "discount_amount": 0,
                "coupon_amount": 0,
                "original_price": price,
                "list_price": price,
                "sale_price": price,
                "extended_list_price": v3_money(extended),
                "extended_sale_price": v3_money(extended),
                "is_require_shipping": True,
                "is_mutable": True,
                "added_by_promotion": False,
            }
        )
    out: Json = {
        "id": cart.id,
        "customer_id": cart.customer_id,
        "channel_id": cart.channel_id,
        "email": cart.email,
        "currency": {"code": cart.currency},
        "tax_included": False,
        "base_amount": v3_money(total),
        "discount_amount": 0,
        "manual_discount_amount": 0,
        "cart_amount": v3_money(total),
        "coupons": [],
        "discounts": [],
        "line_items": {
            "physical_items": items,
            "digital_items": [],
            "gift_certificates": [],
            "custom_items": [],
        },
        "created_time": iso(cart.created_time),
        "updated_time": iso(cart.updated_time),
        "locale": "en",
        "version": cart.version,
    }
    if "redirect_urls" in include:
        base = f"{storefront_url}/cart.php"
        out["redirect_urls"] = {
            "cart_url": f"{base}?action=load&id={cart.id}",
            "checkout_url": f"{base}?action=loadInCheckout&id={cart.id}",
            "embedded_checkout_url": f"{base}?embedded=1&action=loadInCheckout&id={cart.id}",
        }
    return out


def script_json(script: Script) -> Json:
    return {**fields_json(script, omit=frozenset({"client_id"})), "api_client_id": script.client_id}


def hook_json(hook: Hook, store_hash: str, with_status: bool = False) -> Json:
    out = {**fields_json(hook, omit=frozenset({"deactivated"})), "store_hash": store_hash}
    if with_status:
        out["status"] = "active" if hook.is_active else ("deactivated" if hook.deactivated else "inactive")
    return out


def channel_json(channel: Channel) -> Json:
    return {
        **fields_json(channel),
        "is_enabled": channel.status in ENABLED_CHANNEL_STATUSES,
        "icon_url": "https://storage.googleapis.com/bigcommerce-production-dev-center/images/bigcommerce_icon.svg",
    }


def site_json(site: Site, url: str) -> Json:
    created, updated = iso(site.created_at), iso(site.updated_at)
    return {
        "id": site.id,
        "url": url,
        "channel_id": site.channel_id,
        "created_at": created,
        "updated_at": updated,
        "ssl_status": "shared",
        "urls": [
            {"url": url, "type": "primary", "created_at": created, "updated_at": updated},
            {"url": url, "type": "checkout", "created_at": created, "updated_at": updated},
        ],
        "is_checkout_url_customized": False,
    }
