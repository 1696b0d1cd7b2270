"""v3 answers: customers, subscribers, refunds, carts, scripts, webhooks, channels and sites."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from decimal import Decimal

from smbc.sandbox.bigcommerce.render.formats import iso, v3_money
from smbc.sandbox.bigcommerce.state import (
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


def address_json(address: Address) -> Json:
    return {
        "id": address.id,
        "customer_id": address.customer_id,
        "first_name": address.first_name,
        "last_name": address.last_name,
        "company": address.company,
        "address1": address.address1,
        "address2": address.address2,
        "city": address.city,
        "state_or_province": address.state_or_province,
        "postal_code": address.postal_code,
        "country": address.country,
        "country_code": address.country_code,
        "phone": address.phone,
        "address_type": address.address_type,
    }


def customer_json(customer: Customer, include: AbstractSet[str] = frozenset()) -> Json:
    out: Json = {
        "id": customer.id,
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "company": customer.company,
        "phone": customer.phone,
        "registration_ip_address": customer.registration_ip_address,
        "notes": customer.notes,
        "tax_exempt_category": "",
        "customer_group_id": customer.customer_group_id,
        "date_created": iso(customer.date_created),
        "date_modified": iso(customer.date_modified),
        "address_count": len(customer.addresses),
        "attribute_count": 0,
        "authentication": {"force_password_reset": False},
        "accepts_product_review_abandoned_cart_emails": customer.accepts_product_review_abandoned_cart_emails,
        "origin_channel_id": customer.origin_channel_id,
    }
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
    return {
        "id": subscriber.id,
        "email": subscriber.email,
        "first_name": subscriber.first_name,
        "last_name": subscriber.last_name,
        "source": subscriber.source,
        "order_id": subscriber.order_id,
        "channel_id": subscriber.channel_id,
        "consents": list(subscriber.consents),
        "date_created": iso(subscriber.date_created),
        "date_modified": iso(subscriber.date_modified),
    }


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
    return {
        "uuid": script.uuid,
        "name": script.name,
        "description": script.description,
        "html": script.html,
        "src": script.src,
        "auto_uninstall": script.auto_uninstall,
        "load_method": script.load_method,
        "location": script.location,
        "visibility": script.visibility,
        "kind": script.kind,
        "api_client_id": script.client_id,
        "consent_category": script.consent_category,
        "enabled": script.enabled,
        "channel_id": script.channel_id,
        "integrity_hashes": list(script.integrity_hashes),
        "date_created": iso(script.date_created),
        "date_modified": iso(script.date_modified),
    }


def hook_json(hook: Hook, store_hash: str, with_status: bool = False) -> Json:
    out: Json = {
        "id": hook.id,
        "client_id": hook.client_id,
        "store_hash": store_hash,
        "scope": hook.scope,
        "destination": hook.destination,
        "headers": dict(hook.headers) if hook.headers is not None else None,
        "is_active": hook.is_active,
        "created_at": hook.created_at,
        "updated_at": hook.updated_at,
    }
    if with_status:
        out["status"] = "active" if hook.is_active else ("deactivated" if hook.deactivated else "inactive")
    return out


def channel_json(channel: Channel) -> Json:
    return {
        "id": channel.id,
        "name": channel.name,
        "type": channel.type,
        "platform": channel.platform,
        "status": channel.status,
        "external_id": channel.external_id,
        "is_listable_from_ui": channel.is_listable_from_ui,
        "is_visible": channel.is_visible,
        "is_enabled": channel.status in ("active", "prelaunch", "connected"),
        "date_created": iso(channel.date_created),
        "date_modified": iso(channel.date_modified),
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
