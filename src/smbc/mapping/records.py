"""BigCommerce resources -> SALESmanago payloads. Pure: dicts in, typed dataclasses out, no I/O.

Shared by real time, reconciliation, consent and export, so a customer or an order becomes the same
contact and the same event whichever path sends it. Field choices follow how SALESmanago's
own e-commerce integrations fill them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from smbc.bigcommerce.dates import parse_date
from smbc.mapping.line_items import clean_text as _text
from smbc.mapping.line_items import items_columns, shipping_methods
from smbc.mapping.line_items import order_line_items as order_line_items
from smbc.mapping.line_items import product_identifiers as product_identifiers
from smbc.mapping.rules import (
    NO_CONSENT_CHANGE,
    ConsentFlags,
    EventKind,
    lang_code,
    normalize_email,
    normalize_tags,
)
from smbc.salesmanago.payload import CleanedPayload, clean_payload
from smbc.settings.store_settings import StoreSettings, default_location

# Trim limits per event field (what SALESmanago's SDK cuts each detail to): products 512,
# description 2048, location, externalId, shopDomain and each detail 255 (`contact_event`).
_DETAIL_LIMIT = 255


def join_name(*parts: Any) -> str | None:
    """Non-empty parts joined by spaces (first + last name, street 1 + street 2), or None."""
    texts = [text for text in (str(p).strip() for p in parts if p) if text]
    return " ".join(texts) or None


@dataclass(frozen=True)
class ContactAddress:
    street: str | None = None
    zip_code: str | None = None
    city: str | None = None
    country: str | None = None

    def to_payload(self) -> dict[str, Any]:
        return clean_payload(
            {
                "streetAddress": self.street,
                "zipCode": self.zip_code,
                "city": self.city,
                "country": self.country,
            }
        )


@dataclass(frozen=True)
class DoubleOptIn:
    """Which confirmation e-mail a subscribing contact gets, in one of SALESmanago's two styles:
    the current one names the e-mail by its id (`email_id`), the older one by its template, sending
    account and subject (or none of them: SALESmanago's own e-mail)."""

    email_id: str | None = None  # 36-char e-mail id of the confirmation message
    language: str | None = None
    template_id: str | None = None
    account_id: str | None = None
    subject: str | None = None

    def to_payload(self) -> dict[str, Any]:
        if self.email_id:
            return clean_payload(
                {
                    "useApiDoubleOptIn": True,
                    "doubleOptInEmailId": self.email_id,
                    "doubleOptInLanguage": self.language,
                }
            )
        # The older API's names; UNCONFIRMED that today's API still honours them (SALESmanago's SDK
        # stopped sending them), so they go only when the merchant filled them in.
        return clean_payload(
            {
                "useApiDoubleOptIn": True,
                "doubleOptInLanguage": self.language,
                "apiDoubleOptInEmailTemplateId": self.template_id,
                "apiDoubleOptInEmailAccountId": self.account_id,
                "apiDoubleOptInEmailSubject": self.subject,
            }
        )


@dataclass(frozen=True)
class ContactUpsert:
    """`/api/contact/upsert` body (without the auth block)."""

    email: str
    owner: str = ""
    name: str | None = None
    phone: str | None = None
    company: str | None = None
    external_id: str | None = None
    address: ContactAddress | None = None
    province: str | None = None
    lang: str | None = None
    new_email: str | None = None
    tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    consent: ConsentFlags = NO_CONSENT_CHANGE
    double_opt_in: DoubleOptIn | None = None

    def contact(self) -> dict[str, Any]:
        return clean_payload(
            {
                "email": self.email,
                "name": self.name,
                "phone": self.phone,
                "company": self.company,
                "externalId": self.external_id,
                "address": self.address.to_payload() if self.address else None,
            }
        )

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "owner": self.owner,
            "contact": self.contact(),
            "newEmail": self.new_email,
            "forceOptIn": self.consent.force_opt_in,
            "forceOptOut": self.consent.force_opt_out,
            "forcePhoneOptIn": False,
            "forcePhoneOptOut": False,
            "tags": list(normalize_tags(self.tags)),
            "removeTags": list(normalize_tags(self.remove_tags)),
            "province": self.province,
            "lang": self.lang,
        }
        if self.double_opt_in is not None and self.consent.force_opt_in:
            payload.update(self.double_opt_in.to_payload())  # only for a contact subscribing now
        return clean_payload(payload)

    def digest(self) -> str:
        """Identifies the contact's data (not tags or consent), to skip re-sending an unchanged contact."""
        data = {
            "contact": self.contact(),
            "newEmail": self.new_email,
            "province": self.province,
            "lang": self.lang,
        }
        body = json.dumps(data, sort_keys=True).encode()
        return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class ExternalEvent:
    """`addContactExtEvent` body (without the auth block)."""

    kind: EventKind
    date_ms: int
    owner: str = ""
    email: str | None = None
    contact_id: str | None = None
    products: str | None = None
    value: float | None = None
    description: str | None = None
    location: str | None = None
    external_id: str | None = None
    shop_domain: str | None = None
    event_id: str | None = None  # only when updating an existing event
    details: tuple[str | None, ...] = field(default_factory=tuple)  # detail1..detailN

    def contact_event(self) -> dict[str, Any]:
        # As clean_payload({...}) of the fields trimmed to their limits, built already clean (the
        # events export builds one for every event): same keys, same order.
        event = CleanedPayload()
        _put(event, "contactExtEventType", self.kind.value)
        _put(event, "date", self.date_ms)
        _put_cut(event, "products", self.products, 512)
        _put(event, "value", self.value)
        _put_cut(event, "description", self.description, 2048)
        _put_cut(event, "location", self.location, 255)
        _put_cut(event, "externalId", self.external_id, 255)
        _put_cut(event, "shopDomain", self.shop_domain, 255)
        _put(event, "eventId", self.event_id)
        for index, detail in enumerate(self.details, start=1):
            if detail:
                _put(event, f"detail{index}", str(detail)[:_DETAIL_LIMIT])
        return event

    def to_payload(self) -> dict[str, Any]:
        """The contact is named by `contactId` when known, else by e-mail (the SDK drops e-mail
        when both are present)."""
        who = {"contactId": self.contact_id} if self.contact_id else {"email": self.email}
        return clean_payload(
            {"owner": self.owner, **who, "forceOptIn": False, "contactEvent": self.contact_event()}
        )

    def with_event_id(self, event_id: str | None) -> ExternalEvent:
        return replace(self, event_id=event_id)


# -- helpers on BigCommerce data ------------------------------------------------------------


def parse_bc_date(value: Any) -> datetime | None:
    """RFC-2822 (v2) or ISO-8601 (v3); None for a missing, mistyped or unreadable value."""
    return parse_date(value)


def epoch_ms(value: datetime | None) -> int:
    return int(value.timestamp() * 1000) if value else 0


def _money(value: Any) -> float | None:
    try:
        return round(float(value), 2)
    except (TypeError, ValueError):
        return None


def channel_location(settings: StoreSettings, sites: Iterable[Mapping[str, Any]], channel_id: int) -> str:
    """The e-store ID of a storefront: the setting, else `sm_` + md5 of the channel's site URL."""
    if settings.locations.get(int(channel_id)):
        return settings.locations[int(channel_id)]
    url = next((str(s.get("url")) for s in sites if int(s.get("channel_id") or 0) == int(channel_id)), "")
    return settings.location_for(int(channel_id), url) if url else default_location(f"channel-{channel_id}")


def channel_url(sites: Iterable[Mapping[str, Any]], channel_id: int) -> str | None:
    return next((str(s.get("url")) for s in sites if int(s.get("channel_id") or 0) == int(channel_id)), None)


# -- customers -> contacts ------------------------------------------------------------------


def contact_from_customer(
    customer: Mapping[str, Any],
    *,
    owner: str,
    tags: Sequence[str] = (),
    lang: str | None = None,
    previous_email: str | None = None,
    consent: ConsentFlags = NO_CONSENT_CHANGE,
) -> ContactUpsert:
    """A registered customer as a contact: name, e-mail, phone, company, first address, externalId.

    When the customer's e-mail changed since it was last sent, the contact is named by the old e-mail
    and the new one goes in `newEmail`."""
    email = normalize_email(customer.get("email"))
    old = normalize_email(previous_email)
    addresses = customer.get("addresses") or []
    first = addresses[0] if addresses else {}
    address = None
    if first:
        address = ContactAddress(
            street=join_name(first.get("address1"), first.get("address2")),
            zip_code=_text(first.get("postal_code")),
            city=_text(first.get("city")),
            country=_text(first.get("country_code")),
        )
    phone = _text(customer.get("phone")) or _text(first.get("phone") if first else None)
    return ContactUpsert(
        email=old if old and old != email else email,
        new_email=email if old and old != email else None,
        owner=owner,
        name=join_name(customer.get("first_name"), customer.get("last_name")),
        phone=phone,
        company=_text(customer.get("company")) or _text(first.get("company") if first else None),
        external_id=str(customer["id"]) if customer.get("id") else None,
        address=address,
        province=_text(first.get("state_or_province")) if first else None,
        lang=lang,
        tags=tuple(tags),
        consent=consent,
    )


def contact_from_order(
    order: Mapping[str, Any],
    *,
    owner: str,
    settings: StoreSettings,
    consent: ConsentFlags = NO_CONSENT_CHANGE,
    extra_tags: Sequence[str] = (),
) -> ContactUpsert:
    """The buyer from the billing data; purchase tags for customers, guest-purchase tags for guests."""
    billing = order.get("billing_address") or {}
    customer_id = int(order.get("customer_id") or 0)
    tags = settings.tags_purchase if customer_id else settings.tags_guest_purchase
    return ContactUpsert(
        email=normalize_email(billing.get("email")),
        owner=owner,
        name=join_name(billing.get("first_name"), billing.get("last_name")),
        phone=_text(billing.get("phone")),
        company=_text(billing.get("company")),
        external_id=str(customer_id) if customer_id else None,
        address=ContactAddress(
            street=join_name(billing.get("street_1"), billing.get("street_2")),
            zip_code=_text(billing.get("zip")),
            city=_text(billing.get("city")),
            country=_text(billing.get("country_iso2")),
        ),
        province=_text(billing.get("state")),
        lang=lang_code(order.get("customer_locale")),
        tags=(*tags, *extra_tags),
        consent=consent,
    )


def buyer_payload(
    order: Mapping[str, Any],
    *,
    owner: str,
    settings: StoreSettings,
    consent: ConsentFlags = NO_CONSENT_CHANGE,
    extra_tags: Sequence[str] = (),
    double_opt_in: DoubleOptIn | None = None,
) -> CleanedPayload:
    """`contact_from_order(...)` with this consent, these tags added and this double opt-in, as its
    `to_payload()`, built directly as the cleaned dict: the events export sends one for every order."""
    billing = order.get("billing_address") or {}
    get = billing.get
    customer_id = int(order.get("customer_id") or 0)
    # Each value below is trimmed text or None already (`_text`, `join_name`, `normalize_email`,
    # `lang_code`): set unless None or "", as `clean_payload` would keep it.
    contact = CleanedPayload()
    for key, value in (
        ("email", normalize_email(get("email"))),
        ("name", join_name(get("first_name"), get("last_name"))),
        ("phone", _text(get("phone"))),
        ("company", _text(get("company"))),
        ("externalId", str(customer_id) if customer_id else None),
    ):
        if value:
            contact[key] = value
    address = CleanedPayload()
    for key, value in (
        ("streetAddress", join_name(get("street_1"), get("street_2"))),
        ("zipCode", _text(get("zip"))),
        ("city", _text(get("city"))),
        ("country", _text(get("country_iso2"))),
    ):
        if value:
            address[key] = value
    if address:
        contact["address"] = address
    payload = CleanedPayload()
    _put(payload, "owner", owner)
    if contact:
        payload["contact"] = contact
    _put(payload, "forceOptIn", consent.force_opt_in)
    _put(payload, "forceOptOut", consent.force_opt_out)
    payload["forcePhoneOptIn"] = False
    payload["forcePhoneOptOut"] = False
    tags = settings.tags_purchase if customer_id else settings.tags_guest_purchase
    normalized = normalize_tags((*tags, *extra_tags))
    if normalized:
        payload["tags"] = list(normalized)
    province = _text(get("state"))
    if province:
        payload["province"] = province
    lang = lang_code(order.get("customer_locale"))
    if lang:
        payload["lang"] = lang
    if double_opt_in is not None and consent.force_opt_in:
        payload.update(double_opt_in.to_payload())  # cleaned already
    return payload


def _put_cut(payload: dict[str, Any], key: str, value: Any, limit: int) -> None:
    """`_put` of a text cut to `limit` characters first (then trimmed, as the SDK does)."""
    _put(payload, key, value[:limit] if isinstance(value, str) else value)


def _put(payload: dict[str, Any], key: str, value: Any) -> None:
    """`payload[key] = value` as `clean_payload` keeps a scalar: no None or blank text, text trimmed."""
    if value is None:
        return
    if value.__class__ is str:
        value = value.strip()  # type: ignore[union-attr]
        if not value:
            return
    payload[key] = value


# -- orders -> events -----------------------------------------------------------------------


def order_email(order: Mapping[str, Any]) -> str:
    return normalize_email((order.get("billing_address") or {}).get("email"))


@dataclass(frozen=True, slots=True)
class EventOrigin:
    """What every event of one storefront carries the same: the store's chosen product identifier,
    the channel's SALESmanago location and the contacts' owner."""

    product_identifier: str
    location: str
    owner: str

    @classmethod
    def of(cls, settings: StoreSettings, location: str) -> EventOrigin:
        return cls(settings.product_identifier, location, settings.contact_owner)


def order_event(
    order: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    *,
    kind: EventKind,
    origin: EventOrigin,
    date: datetime | None = None,
    contact_id: str | None = None,
    email: str | None = None,
) -> ExternalEvent:
    """PURCHASE / CANCELLATION for an order: products by the chosen identifier, value = order total,
    externalId = order id, date = order creation (ms) unless given, description = payment method,
    details: names, quantities, customer note, shipping methods, other identifiers, language, currency."""
    products, details = items_columns(
        items,
        origin.product_identifier,
        locale=order.get("customer_locale"),
        currency=order.get("currency_code"),
        note=_text(order.get("customer_message")),
        shipping=", ".join(shipping_methods(order)) or None,
        products_only=True,
    )
    when = date or parse_bc_date(order.get("date_created"))
    return ExternalEvent(
        kind=kind,
        date_ms=epoch_ms(when),
        owner=origin.owner,
        email=order_email(order) if email is None else email,  # the caller's, read once
        contact_id=contact_id,
        products=products,
        # UNCONFIRMED which currency totals use on multi-currency orders: sent with currency_code.
        value=_money(order.get("total_inc_tax")),
        description=_text(order.get("payment_method")),
        location=origin.location,
        external_id=str(order.get("id")),
        details=details,
    )


def return_event(
    order: Mapping[str, Any],
    refund: Mapping[str, Any],
    items: Sequence[Mapping[str, Any]],
    *,
    origin: EventOrigin,
) -> ExternalEvent:
    """RETURN for one refund: the refunded products (all of the order's when the refund names none),
    value = refunded amount, date = refund time, detail2 = refund id."""
    refunded_ids = {
        int(i.get("item_id") or 0)
        for i in refund.get("items") or []
        if str(i.get("item_type", "PRODUCT")).upper() == "PRODUCT"
    }
    chosen_items = [i for i in items if int(i.get("id") or 0) in refunded_ids] or list(items)
    base = order_event(
        order,
        chosen_items,
        kind=EventKind.RETURN,
        origin=origin,
        date=parse_bc_date(refund.get("created")) or parse_bc_date(order.get("date_modified")),
    )
    details = list(base.details)
    details[1] = str(refund.get("id"))
    return replace(base, value=_money(refund.get("total_amount")), details=tuple(details))


# -- carts -> CART events -------------------------------------------------------------------


def cart_items(cart: Mapping[str, Any]) -> list[dict[str, Any]]:
    line_items = cart.get("line_items") or {}
    items: list[dict[str, Any]] = []
    for key in ("physical_items", "digital_items", "custom_items"):
        items.extend(dict(i) for i in line_items.get(key) or [] if not i.get("parent_id"))
    return items


def cart_digest(cart: Mapping[str, Any]) -> str:
    """What a CART event shows: items, quantities and amount. Equal digests need no new send."""
    snapshot = [
        (str(i.get("product_id")), str(i.get("variant_id")), str(i.get("sku")), int(i.get("quantity") or 0))
        for i in cart_items(cart)
    ]
    body = json.dumps([sorted(snapshot), str(cart.get("cart_amount"))]).encode()
    return hashlib.sha256(body).hexdigest()


def cart_event(
    cart: Mapping[str, Any],
    *,
    origin: EventOrigin,
    now: datetime,
    email: str | None = None,
    contact_id: str | None = None,
    event_id: str | None = None,
) -> ExternalEvent:
    """CART: products, value, product names, quantities, the cart's URL as description."""
    products, details = items_columns(
        cart_items(cart),
        origin.product_identifier,
        locale=cart.get("locale"),
        currency=(cart.get("currency") or {}).get("code"),
    )
    amount = cart.get("cart_amount")
    if amount is None:
        amount = cart.get("base_amount")
    redirect = cart.get("redirect_urls") or {}
    return ExternalEvent(
        kind=EventKind.CART,
        date_ms=epoch_ms(now),
        owner=origin.owner,
        email=normalize_email(email) or None,
        contact_id=contact_id,
        products=products,
        value=_money(amount),
        description=_text(redirect.get("cart_url")),
        location=origin.location,
        external_id=_text(cart.get("id")),
        event_id=event_id,
        details=details,
    )
