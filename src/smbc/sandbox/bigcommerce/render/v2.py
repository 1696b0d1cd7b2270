"""v2 answers: orders (with their products and consignments), order statuses and the store."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from decimal import Decimal

from smbc.sandbox.bigcommerce.render.formats import link, rfc2822, v2_money, v3_money
from smbc.sandbox.bigcommerce.state import ORDER_STATUSES, Json, Order, OrderLine, StoreState

ZERO = v2_money(Decimal(0))


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


def order_json(order: Order, api_base: str, include: AbstractSet[str] = frozenset()) -> Json:
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
    shipping = v3_money(order.shipping)
    return {
        "pickups": [],
        "shipping": [
            {
                "id": order.id,
                # The fake ships to the billing address.
                **billing_json(order.billing),
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
