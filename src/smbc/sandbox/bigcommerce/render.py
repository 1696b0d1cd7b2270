"""Pure functions from state rows to the JSON BigCommerce answers with (shapes from its OpenAPI specs).

v3 dates are ISO-8601 (`2024-05-14T09:34:00Z`); v2 dates are RFC-2822 in UTC
(`Wed, 10 Jan 2018 21:05:30 +0000`); v2 money is a decimal string with four places (`"361.9500"`);
v3 money is a JSON number.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from smbc.sandbox.bigcommerce.state import (
    ORDER_STATUSES,
    Address,
    Cart,
    Channel,
    Customer,
    Hook,
    Order,
    OrderLine,
    Refund,
    Script,
    Site,
    StoreState,
    Subscriber,
)

Json = dict[str, Any]
ZERO = "0.0000"


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc2822(dt: datetime | None) -> str:
    """`Wed, 10 Jan 2018 21:05:30 +0000` (what email.utils.format_datetime gives, 5x faster: pages of 250)."""
    if dt is None:
        return ""
    u = dt.astimezone(UTC)
    return f"{DAYS[u.weekday()]}, {u.day:02d} {MONTHS[u.month - 1]} {u.year} {u:%H:%M:%S} +0000"


def v2_money(value: Decimal) -> str:
    return f"{value:.4f}"


def v3_money(value: Decimal) -> float:
    return float(value)


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


def customer_json(customer: Customer, include: set[str] = frozenset()) -> Json:  # type: ignore[assignment]
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


def link(api_base: str, path: str) -> Json:
    return {"url": f"{api_base}{path}", "resource": path}


def order_product_json(line: OrderLine, order: Order) -> Json:
    total = line.price * line.quantity
    price, sum_ = v2_money(line.price), v2_money(total)
    refunded = line.price * line.quantity_refunded
    return {
        "id": line.id,
        "order_id": line.order_id,
        "product_id": line.product_id,
        "variant_id": line.variant_id,
        "order_address_id": order.id,
        "name": line.name,
        "name_customer": line.name,
        "name_merchant": line.name,
        "sku": line.sku,
        "upc": "",
        "type": "physical",
        "base_price": price,
        "price_ex_tax": price,
        "price_inc_tax": price,
        "price_tax": ZERO,
        "base_total": sum_,
        "total_ex_tax": sum_,
        "total_inc_tax": sum_,
        "total_tax": ZERO,
        "discounted_total_inc_tax": sum_,
        "quantity": line.quantity,
        "base_cost_price": ZERO,
        "cost_price_inc_tax": ZERO,
        "cost_price_ex_tax": ZERO,
        "cost_price_tax": ZERO,
        "weight": "1.0000",
        "width": ZERO,
        "height": ZERO,
        "depth": ZERO,
        "is_refunded": line.quantity_refunded >= line.quantity,
        "quantity_refunded": line.quantity_refunded,
        "refund_amount": v2_money(refunded),
        "return_id": 0,
        "wrapping_id": 0,
        "wrapping_name": None,
        "base_wrapping_cost": ZERO,
        "wrapping_cost_ex_tax": ZERO,
        "wrapping_cost_inc_tax": ZERO,
        "wrapping_cost_tax": ZERO,
        "wrapping_message": "",
        "quantity_shipped": 0,
        "event_name": None,
        "event_date": None,
        "fixed_shipping_cost": ZERO,
        "ebay_item_id": "",
        "ebay_transaction_id": "",
        "option_set_id": None,
        "parent_order_product_id": None,
        "is_bundled_product": False,
        "bin_picking_number": "",
        "external_id": None,
        "brand": "Sandbox",
        "applied_discounts": [],
        "product_options": [],
        "configurable_fields": [],
        "gift_certificate_id": None,
    }


def billing_json(billing: dict[str, str]) -> Json:
    keys = ("first_name", "last_name", "company", "street_1", "street_2", "city", "state", "zip", "country")
    out: Json = {k: billing.get(k, "") for k in keys}
    out["country_iso2"] = billing.get("country_iso2", "US")
    out["phone"] = billing.get("phone", "")
    out["email"] = billing.get("email", "")
    out["form_fields"] = []
    return out


def order_json(order: Order, api_base: str, include: set[str] = frozenset()) -> Json:  # type: ignore[assignment]
    status_name = ORDER_STATUSES.get(order.status_id, ("Unknown", ""))[0]
    subtotal, total = v2_money(order.subtotal), v2_money(order.total)
    shipping = v2_money(order.shipping)
    items_total = sum(line.quantity for line in order.lines)
    if order.refunded_amount <= 0:
        payment_status = "captured"
    elif order.refunded_amount >= order.total:
        payment_status = "refunded"
    else:
        payment_status = "partially refunded"
    out: Json = {
        "id": order.id,
        "customer_id": order.customer_id,
        "date_created": rfc2822(order.date_created),
        "date_modified": rfc2822(order.date_modified),
        "date_shipped": rfc2822(order.date_shipped),
        "status_id": order.status_id,
        "status": status_name,
        "custom_status": status_name,
        "cart_id": order.cart_id,
        "subtotal_ex_tax": subtotal,
        "subtotal_inc_tax": subtotal,
        "subtotal_tax": ZERO,
        "base_shipping_cost": shipping,
        "shipping_cost_ex_tax": shipping,
        "shipping_cost_inc_tax": shipping,
        "shipping_cost_tax": ZERO,
        "shipping_cost_tax_class_id": 2,
        "base_handling_cost": ZERO,
        "handling_cost_ex_tax": ZERO,
        "handling_cost_inc_tax": ZERO,
        "handling_cost_tax": ZERO,
        "handling_cost_tax_class_id": 2,
        "base_wrapping_cost": ZERO,
        "wrapping_cost_ex_tax": ZERO,
        "wrapping_cost_inc_tax": ZERO,
        "wrapping_cost_tax": ZERO,
        "wrapping_cost_tax_class_id": 3,
        "total_ex_tax": total,
        "total_inc_tax": total,
        "total_tax": ZERO,
        "items_total": items_total,
        "items_shipped": 0,
        "payment_method": order.payment_method,
        "payment_provider_id": "",
        "payment_status": payment_status,
        "refunded_amount": v2_money(order.refunded_amount),
        "order_is_digital": False,
        "store_credit_amount": ZERO,
        "gift_certificate_amount": ZERO,
        "ip_address": order.ip_address,
        "ip_address_v6": "",
        "geoip_country": "United States",
        "geoip_country_iso2": "US",
        "currency_id": 1,
        "currency_code": order.currency_code,
        "currency_exchange_rate": "1.0000000000",
        "default_currency_id": 1,
        "default_currency_code": order.currency_code,
        "store_default_currency_code": order.currency_code,
        "store_default_to_transactional_exchange_rate": "1.0000000000",
        "staff_notes": order.staff_notes,
        "customer_message": order.customer_message,
        "discount_amount": ZERO,
        "coupon_discount": ZERO,
        "shipping_address_count": 1,
        "is_deleted": order.is_deleted,
        "ebay_order_id": "0",
        "billing_address": billing_json(order.billing),
        "is_email_opt_in": order.is_email_opt_in,
        "is_tax_inclusive_pricing": False,
        "order_source": "www",
        "external_source": None,
        "external_id": None,
        "external_merchant_id": None,
        "external_order_id": "",
        "channel_id": order.channel_id,
        "tax_provider_id": "BasicTaxProvider",
        "customer_locale": "en",
        "products": link(api_base, f"/v2/orders/{order.id}/products"),
        "shipping_addresses": link(api_base, f"/v2/orders/{order.id}/shipping_addresses"),
        "coupons": link(api_base, f"/v2/orders/{order.id}/coupons"),
    }
    if "consignments" in include or "consignments.line_items" in include:
        out["consignments"] = consignments_json(order, api_base, "consignments.line_items" in include)
    else:
        out["consignments"] = link(api_base, f"/v2/orders/{order.id}/consignments")
    return out


def consignments_json(order: Order, api_base: str, with_line_items: bool) -> Json:
    """The object structure (`consignment_structure=object`): one shipping consignment."""
    if with_line_items:
        items: list[Json] = [order_product_json(line, order) for line in order.lines]
    else:
        items = [link(api_base, f"/v2/orders/{order.id}/products/{line.id}") for line in order.lines]
    b = order.billing
    shipping = v3_money(order.shipping)
    return {
        "pickups": [],
        "shipping": [
            {
                "id": order.id,
                "first_name": b.get("first_name", ""),
                "last_name": b.get("last_name", ""),
                "company": b.get("company", ""),
                "street_1": b.get("street_1", ""),
                "street_2": b.get("street_2", ""),
                "city": b.get("city", ""),
                "zip": b.get("zip", ""),
                "country": b.get("country", ""),
                "country_iso2": b.get("country_iso2", "US"),
                "state": b.get("state", ""),
                "email": b.get("email", ""),
                "phone": b.get("phone", ""),
                "form_fields": [],
                "line_items": items,
                "items_total": sum(line.quantity for line in order.lines),
                "items_shipped": 0,
                "shipping_method": "Flat Rate",
                "base_cost": shipping,
                "cost_ex_tax": shipping,
                "cost_inc_tax": shipping,
                "cost_tax": 0,
                "cost_tax_class_id": 2,
                "base_handling_cost": 0,
                "handling_cost_ex_tax": 0,
                "handling_cost_inc_tax": 0,
                "handling_cost_tax": 0,
                "handling_cost_tax_class_id": 2,
                "shipping_zone_id": 1,
                "shipping_zone_name": "United States",
                "shipping_quotes": link(
                    api_base, f"/v2/orders/{order.id}/consignments/shipping/{order.id}/shipping_quotes"
                ),
            }
        ],
        "downloads": [],
        "email": {"gift_certificates": []},
    }


def order_status_json(status_id: int) -> Json:
    name, description = ORDER_STATUSES[status_id]
    return {
        "id": status_id,
        "name": name,
        "system_label": name,
        "custom_label": name,
        "system_description": description,
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


def cart_json(cart: Cart, storefront_url: str, include: set[str] = frozenset()) -> Json:  # type: ignore[assignment]
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


def storefront_cart_json(cart: Cart, storefront_url: str) -> Json:
    """The Storefront API's cart (`GET /api/storefront/carts`, carts.sf.yml): camelCase, unlike REST."""
    items = []
    total = Decimal("0")
    for item in cart.line_items:
        extended = item.price * item.quantity
        total += extended
        price = v3_money(item.price)
        items.append(
            {
                "id": item.id,
                "variantId": item.variant_id,
                "productId": item.product_id,
                "sku": item.sku,
                "name": item.name,
                "url": f"{storefront_url}/products/{item.product_id}/",
                "quantity": item.quantity,
                "brand": "Sandbox",
                "isTaxable": True,
                "imageUrl": f"{storefront_url}/products/{item.product_id}/image.png",
                "discounts": [],
                "discountAmount": 0,
                "couponAmount": 0,
                "originalPrice": price,
                "listPrice": price,
                "salePrice": price,
                "extendedListPrice": v3_money(extended),
                "extendedSalePrice": v3_money(extended),
                "type": "physical",
                "isMutable": True,
                "isShippingRequired": True,
                "giftWrapping": None,
                "options": [],
            }
        )
    return {
        "id": cart.id,
        "customerId": cart.customer_id,
        "email": cart.email,
        "currency": {"code": cart.currency, "decimalPlaces": 2, "name": "US Dollar", "symbol": "$"},
        "isTaxIncluded": False,
        "baseAmount": v3_money(total),
        "discountAmount": 0,
        "cartAmount": v3_money(total),
        "coupons": [],
        "discounts": [],
        "lineItems": {"physicalItems": items, "digitalItems": [], "giftCertificates": [], "customItems": []},
        "createdTime": iso(cart.created_time),
        "updatedTime": iso(cart.updated_time),
        "locale": "en",
        "version": cart.version,
    }


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


def store_json(store: StoreState, base_url: str, account_uuid: str) -> Json:
    storefront = f"{base_url}/storefront/{store.hash}/1"
    host = storefront.split("://", 1)[-1]
    return {
        "id": store.hash,
        "account_uuid": account_uuid,
        "domain": host,
        "secure_url": storefront,
        "control_panel_base_url": f"{base_url}/manage",
        "status": "live",
        "name": store.name,
        "first_name": store.owner.username.split(" ")[0],
        "last_name": "Owner",
        "address": "1 Sandbox Way\nAustin, TX 78701\nUnited States",
        "country": "United States",
        "country_code": "US",
        "infrastructure_region": "us-central1",
        "phone": "",
        "admin_email": store.owner.email,
        "order_email": store.owner.email,
        "favicon_url": f"{base_url}/storefront/favicon.ico",
        "timezone": {
            "name": "Etc/UTC",
            "raw_offset": 0,
            "dst_offset": 0,
            "dst_correction": False,
            "date_format": {"display": "jS M Y", "export": "M jS Y", "extended_display": "M jS Y @ g:i A"},
        },
        "language": "en",
        "currency": "USD",
        "currency_symbol": "$",
        "decimal_separator": ".",
        "thousands_separator": ",",
        "decimal_places": 2,
        "currency_symbol_location": "left",
        "weight_units": "LBS",
        "dimension_units": "Inches",
        "dimension_decimal_places": 2,
        "dimension_decimal_token": ".",
        "dimension_thousands_token": ",",
        "plan_name": "Pro",
        "plan_level": "Pro",
        "plan_is_trial": False,
        "industry": "",
        "logo": [],
        "is_price_entered_with_tax": False,
        "store_id": store.store_id,
        "default_channel_id": 1,
        "default_site_id": 1000,
        "active_comparison_modules": [],
        "features": {
            "stencil_enabled": True,
            "sitewidehttps_enabled": False,
            "facebook_catalog_id": "",
            "checkout_type": "optimized",
            "wishlists_enabled": True,
            "graphql_storefront_api_enabled": True,
            "shopper_consent_tracking_enabled": store.consent_banner,
            "multi_storefront_enabled": True,
            "storefront_limits": {
                "active": sum(1 for c in store.channels.values() if c.status == "active"),
                "total_including_inactive": len(store.channels),
            },
        },
    }
