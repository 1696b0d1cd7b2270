"""Pure mapping and rules: BigCommerce resources -> SALESmanago payloads, field by field."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smbc.consent.plan import ConsentPlan
from smbc.mapping import records as mapping
from smbc.mapping import rules
from smbc.mapping.rules import ConsentFlags, EventKind
from smbc.salesmanago.payload import clean_payload
from smbc.settings.store_settings import StoreSettings, default_location

CUSTOMER: dict[str, Any] = {
    "id": 41,
    "email": "Jan.Kowalski@Example.com",
    "first_name": "Jan",
    "last_name": "Kowalski",
    "company": "Acme",
    "phone": "+48 600 100 200",
    "addresses": [
        {
            "id": 77,
            "address1": "ul. Prosta 1",
            "address2": "m. 4",
            "city": "Warszawa",
            "postal_code": "00-001",
            "country_code": "PL",
            "state_or_province": "Mazowieckie",
        },
        {"id": 78, "address1": "second", "city": "Krakow", "country_code": "PL"},
    ],
}

LINE_ITEMS = [
    {"id": 1, "product_id": 111, "variant_id": 1110, "sku": "MUG-1", "name": "Mug", "quantity": 2},
    {"id": 2, "product_id": 222, "variant_id": 2220, "sku": "TEE-2", "name": "T-shirt", "quantity": 1},
]

ORDER: dict[str, Any] = {
    "id": 118,
    "customer_id": 41,
    "status_id": 11,
    "channel_id": 2,
    "date_created": "Tue, 06 Jan 2026 10:00:00 +0000",
    "date_modified": "Wed, 07 Jan 2026 12:30:00 +0000",
    "total_inc_tax": "123.4500",
    "currency_code": "PLN",
    "payment_method": "Cash on Delivery",
    "customer_message": "Ring twice",
    "customer_locale": "pl-PL",
    "is_email_opt_in": False,
    "cart_id": "cart-1",
    "billing_address": {
        "first_name": "Jan",
        "last_name": "Kowalski",
        "company": "Acme",
        "street_1": "ul. Prosta 1",
        "street_2": "m. 4",
        "city": "Warszawa",
        "state": "Mazowieckie",
        "zip": "00-001",
        "country_iso2": "PL",
        "phone": "600100200",
        "email": "JAN.kowalski@example.com",
    },
    "consignments": [
        {
            "pickups": [],
            "shipping": [{"id": 9, "shipping_method": "Courier", "line_items": LINE_ITEMS}],
            "downloads": [],
            "email": {"gift_certificates": []},
        }
    ],
}

CART: dict[str, Any] = {
    "id": "cart-1",
    "customer_id": 0,
    "channel_id": 1,
    "email": "guest@example.com",
    "currency": {"code": "EUR"},
    "cart_amount": 30.5,
    "base_amount": 35,
    "locale": "de-DE",
    "line_items": {
        "physical_items": [
            {"id": "a", "product_id": 111, "variant_id": 1110, "sku": "MUG-1", "name": "Mug", "quantity": 3},
        ],
        "digital_items": [
            {
                "id": "b",
                "product_id": 333,
                "variant_id": 3330,
                "sku": "EBOOK",
                "name": "E-book",
                "quantity": 1,
            },
        ],
        "gift_certificates": [{"id": "g", "name": "Gift", "amount": 10}],
        "custom_items": [],
    },
    "redirect_urls": {"cart_url": "https://shop.example.com/cart.php?action=load&id=cart-1&token=t"},
}

SETTINGS = StoreSettings(
    contact_owner="owner@shop.example.com",
    tags_registration=["bc register"],
    tags_purchase=["bc_purchase"],
    tags_guest_purchase=["guest purchase"],
    tags_newsletter=["newsletter"],
    locations={2: "sm_second_store"},
)
SITES = [
    {"channel_id": 1, "url": "https://shop.example.com"},
    {"channel_id": 2, "url": "https://two.example.com"},
]
ORIGIN = mapping.EventOrigin.of(SETTINGS, "l")


# -- customers -> contacts -----------------------------------------------------------------------


def customer_payload(**kw: Any) -> dict[str, Any]:
    return mapping.contact_from_customer(CUSTOMER, owner=SETTINGS.contact_owner, **kw).to_payload()


def test_customer_contact_fields() -> None:
    payload = customer_payload(tags=SETTINGS.tags_registration, lang="PL")
    assert payload["owner"] == "owner@shop.example.com"
    assert payload["contact"] == {
        "email": "jan.kowalski@example.com",
        "name": "Jan Kowalski",
        "phone": "+48 600 100 200",
        "company": "Acme",
        "externalId": "41",
        "address": {
            "streetAddress": "ul. Prosta 1 m. 4",
            "zipCode": "00-001",
            "city": "Warszawa",
            "country": "PL",
        },
    }
    assert payload["province"] == "Mazowieckie"
    assert payload["tags"] == ["BC_REGISTER"]
    assert payload["lang"] == "PL"


def test_customer_without_address_or_phone_sends_no_empty_fields() -> None:
    bare = {"id": 5, "email": "a@b.co", "first_name": "", "last_name": "", "addresses": []}
    payload = mapping.contact_from_customer(bare, owner="o@x.io").to_payload()
    assert payload["contact"] == {"email": "a@b.co", "externalId": "5"}
    assert "tags" not in payload and "lang" not in payload and "newEmail" not in payload


def test_changed_email_is_sent_as_new_email_of_the_old_contact() -> None:
    payload = customer_payload(previous_email="old@example.com")
    assert payload["contact"]["email"] == "old@example.com"
    assert payload["newEmail"] == "jan.kowalski@example.com"


def test_same_email_sends_no_new_email() -> None:
    assert "newEmail" not in customer_payload(previous_email="JAN.KOWALSKI@example.com")


def test_customer_update_never_opts_in_or_out() -> None:
    payload = customer_payload()
    assert payload["forceOptIn"] is False and payload["forceOptOut"] is False
    assert payload["forcePhoneOptIn"] is False and payload["forcePhoneOptOut"] is False


def test_digest_changes_with_the_data_only() -> None:
    a = mapping.contact_from_customer(CUSTOMER, owner="o@x.io")
    assert a.digest() == mapping.contact_from_customer(dict(CUSTOMER), owner="o@x.io").digest()
    assert a.digest() != mapping.contact_from_customer({**CUSTOMER, "phone": "1"}, owner="o@x.io").digest()


# -- orders -> buyer contact + events -------------------------------------------------------------


def test_order_buyer_contact_from_billing_with_purchase_tags() -> None:
    payload = mapping.contact_from_order(ORDER, owner="o@x.io", settings=SETTINGS).to_payload()
    assert payload["contact"] == {
        "email": "jan.kowalski@example.com",
        "name": "Jan Kowalski",
        "phone": "600100200",
        "company": "Acme",
        "externalId": "41",
        "address": {
            "streetAddress": "ul. Prosta 1 m. 4",
            "zipCode": "00-001",
            "city": "Warszawa",
            "country": "PL",
        },
    }
    assert (
        payload["tags"] == ["BC_PURCHASE"]
        and payload["lang"] == "PL"
        and payload["province"] == "Mazowieckie"
    )


def test_guest_order_gets_guest_purchase_tags_and_no_external_id() -> None:
    guest = {**ORDER, "customer_id": 0}
    payload = mapping.contact_from_order(guest, owner="o@x.io", settings=SETTINGS).to_payload()
    assert payload["tags"] == ["GUEST_PURCHASE"] and "externalId" not in payload["contact"]


def purchase(**kw: Any) -> dict[str, Any]:
    settings = kw.pop("settings", SETTINGS)
    origin = mapping.EventOrigin(settings.product_identifier, "sm_loc", "o@x.io")
    event = mapping.order_event(ORDER, LINE_ITEMS, kind=EventKind.PURCHASE, origin=origin, **kw)
    return event.to_payload()


def test_purchase_event_fields() -> None:
    payload = purchase()
    assert payload["email"] == "jan.kowalski@example.com" and payload["owner"] == "o@x.io"
    assert payload["forceOptIn"] is False
    event = payload["contactEvent"]
    assert event["contactExtEventType"] == "PURCHASE"
    assert event["products"] == "111,222"
    assert event["value"] == 123.45
    assert event["externalId"] == "118"
    assert event["date"] == int(datetime(2026, 1, 6, 10, tzinfo=UTC).timestamp() * 1000)
    assert event["description"] == "Cash on Delivery"
    assert event["location"] == "sm_loc"
    assert event["detail1"] == "Mug, T-shirt"
    assert event["detail3"] == "2/1"
    assert event["detail4"] == "Ring twice"
    assert event["detail5"] == "Courier"
    assert event["detail6"] == "MUG-1,TEE-2" and event["detail7"] == "1110,2220"
    assert event["detail8"] == "pl"
    assert event["detail9"] == "PLN"
    assert "eventId" not in event and "detail2" not in event


@pytest.mark.parametrize(
    ("identifier", "products", "detail6", "detail7"),
    [("sku", "MUG-1,TEE-2", "111,222", "1110,2220"), ("variant_id", "1110,2220", "111,222", "MUG-1,TEE-2")],
)
def test_products_by_the_chosen_identifier(
    identifier: str, products: str, detail6: str, detail7: str
) -> None:
    event = purchase(settings=SETTINGS.model_copy(update={"product_identifier": identifier}))["contactEvent"]
    assert (event["products"], event["detail6"], event["detail7"]) == (products, detail6, detail7)


def test_event_names_the_contact_by_contact_id_when_known() -> None:
    payload = purchase(contact_id="c-1")
    assert payload["contactId"] == "c-1" and "email" not in payload


def test_line_items_from_consignments_and_links_mean_not_expanded() -> None:
    assert [i["id"] for i in mapping.order_line_items(ORDER)] == [1, 2]
    linked = {**ORDER, "consignments": [{"shipping": [{"line_items": [{"url": "u", "resource": "/r"}]}]}]}
    assert mapping.order_line_items(linked) is None
    assert mapping.order_line_items({**ORDER, "consignments": None}) is None
    as_object = {**ORDER, "consignments": ORDER["consignments"][0]}
    assert [i["id"] for i in mapping.order_line_items(as_object)] == [1, 2]


def test_return_event_for_one_refund() -> None:
    refund = {
        "id": 6,
        "created": "2026-01-08T09:00:00+00:00",
        "total_amount": 20.0,
        "items": [{"item_type": "PRODUCT", "item_id": 2, "quantity": 1}],
    }
    event = mapping.return_event(ORDER, refund, LINE_ITEMS, origin=ORIGIN).to_payload()
    ce = event["contactEvent"]
    assert ce["contactExtEventType"] == "RETURN" and ce["products"] == "222" and ce["value"] == 20.0
    assert ce["detail2"] == "6" and ce["externalId"] == "118"
    assert ce["date"] == int(datetime(2026, 1, 8, 9, tzinfo=UTC).timestamp() * 1000)


def test_long_fields_are_trimmed_to_the_sdk_limits() -> None:
    many = [{"id": i, "product_id": 10_000 + i, "name": "N" * 300, "quantity": 1} for i in range(200)]
    ce = mapping.order_event(ORDER, many, kind=EventKind.PURCHASE, origin=ORIGIN).contact_event()
    assert len(ce["products"]) == 512 and len(ce["detail1"]) == 255


def test_location_of_the_orders_channel() -> None:
    assert mapping.channel_location(SETTINGS, SITES, 2) == "sm_second_store"
    assert mapping.channel_location(SETTINGS, SITES, 1) == default_location("https://shop.example.com")


# -- carts -> CART --------------------------------------------------------------------------------


def test_cart_event_fields() -> None:
    now = datetime(2026, 1, 9, 8, tzinfo=UTC)
    origin = mapping.EventOrigin.of(SETTINGS, "sm_loc")
    payload = mapping.cart_event(CART, origin=origin, now=now, email="Guest@Example.com").to_payload()
    assert payload["email"] == "guest@example.com" and payload["owner"] == "owner@shop.example.com"
    ce = payload["contactEvent"]
    assert ce["contactExtEventType"] == "CART"
    assert ce["products"] == "111,333" and ce["value"] == 30.5
    assert ce["description"] == CART["redirect_urls"]["cart_url"]
    assert ce["detail1"] == "Mug, E-book" and ce["detail3"] == "3/1"
    assert ce["detail8"] == "de" and ce["detail9"] == "EUR"
    assert ce["date"] == int(now.timestamp() * 1000) and ce["externalId"] == "cart-1"


def test_cart_event_by_contact_id_with_event_id_when_updating() -> None:
    payload = mapping.cart_event(
        CART,
        origin=ORIGIN,
        now=datetime.now(UTC),
        contact_id="sm-1",
        event_id="e-9",
    ).to_payload()
    assert payload["contactId"] == "sm-1" and "email" not in payload
    assert payload["contactEvent"]["eventId"] == "e-9"


def test_cart_digest_follows_items_and_amount() -> None:
    same = mapping.cart_digest(CART)
    assert mapping.cart_digest({**CART, "updated_time": "later"}) == same
    assert mapping.cart_digest({**CART, "cart_amount": 31}) != same


# -- rules ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("email", "problem"),
    [
        ("ok@example.com", None),
        ("  OK@Example.com ", None),
        ("", "no e-mail address"),
        ("not-an-email", "invalid e-mail address"),
        ("a@b", "invalid e-mail address"),
        ("x@10minutemail.net", "ignored e-mail domain 10minutemail.net"),
        ("x@TEMP-mail.com", "ignored e-mail domain temp-mail.com"),
    ],
)
def test_email_problems(email: str, problem: str | None) -> None:
    found = rules.email_problem(email, [" 10minutemail.net", "temp-mail.com "])
    assert found == problem if problem is None else problem in (found or "")


def test_tags_upper_case_with_underscores_without_repeats() -> None:
    assert rules.normalize_tags(["bc register", "BC_REGISTER", " ", "vip "]) == ("BC_REGISTER", "VIP")


@pytest.mark.parametrize(
    ("now", "last", "flags"),
    [
        (True, None, ConsentFlags(force_opt_in=True)),
        (True, False, ConsentFlags(force_opt_in=True)),
        (True, True, ConsentFlags()),
        (False, True, ConsentFlags(force_opt_out=True)),
        (False, None, ConsentFlags()),  # never subscribed here: SALESmanago's status is left alone
        (None, True, ConsentFlags()),
        (None, None, ConsentFlags()),
    ],
)
def test_consent_flags_never_opt_in_by_accident(
    now: bool | None, last: bool | None, flags: ConsentFlags
) -> None:
    assert rules.consent_flags(now, last) == flags


def test_opt_in_contact_carries_double_opt_in_only_when_subscribing() -> None:
    doi = mapping.DoubleOptIn(email_id="0f0e", language="PL")
    sub = mapping.ContactUpsert(email="a@b.co", consent=ConsentFlags(force_opt_in=True), double_opt_in=doi)
    assert sub.to_payload()["useApiDoubleOptIn"] is True and sub.to_payload()["doubleOptInEmailId"] == "0f0e"
    assert "useApiDoubleOptIn" not in mapping.ContactUpsert(email="a@b.co", double_opt_in=doi).to_payload()


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (0, None),
        (1, None),
        (7, None),
        (11, EventKind.PURCHASE),
        (2, EventKind.PURCHASE),
        (10, EventKind.PURCHASE),
        (5, EventKind.CANCELLATION),
        (4, None),
    ],
)
def test_order_status_to_event(status: int, kind: EventKind | None) -> None:
    assert rules.order_event_kind(status, SETTINGS.purchase_statuses) == kind


def test_incomplete_is_never_a_purchase_even_if_configured() -> None:
    assert rules.order_event_kind(0, [0, 11]) is None


T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("window", "elapsed", "keeps"),
    [
        ("always_new", timedelta(seconds=1), False),
        ("15m", timedelta(minutes=14), True),
        ("15m", timedelta(minutes=15), False),
        ("1h", timedelta(minutes=59), True),
        ("4h", timedelta(hours=5), False),
        ("12h", timedelta(hours=11), True),
        ("7d", timedelta(days=6), True),
        ("7d", timedelta(days=8), False),
        ("always_update", timedelta(days=400), True),
    ],
)
def test_cart_window(window: str, elapsed: timedelta, keeps: bool) -> None:
    assert rules.cart_update_keeps_event(window, "e1", False, T0, T0 + elapsed) is keeps


def test_closed_or_never_sent_window_starts_a_new_event() -> None:
    assert rules.cart_update_keeps_event("always_update", "e1", True, T0, T0) is False
    assert rules.cart_update_keeps_event("always_update", None, False, None, T0) is False


def test_lang_codes() -> None:
    assert [rules.lang_code(x) for x in ("en-US", "pl_PL", "de", "", None, "1x")] == [
        "EN",
        "PL",
        "DE",
        None,
        None,
        None,
    ]


BUYERS = [
    ORDER,
    {**ORDER, "customer_id": 0, "customer_locale": "xx"},
    {
        "id": 3,
        "billing_address": {"email": "  Mixed@Case.IO ", "first_name": " ", "last_name": "Solo ", "zip": ""},
        "customer_locale": " ",
    },
    {"id": 4, "customer_id": "7", "billing_address": {"email": "a@b.io", "street_2": " Flat 2 "}},
    {"id": 5},
]
PLANS = [
    ConsentPlan(),
    ConsentPlan(ConsentFlags(force_opt_in=True), ("newsletter ok",), mapping.DoubleOptIn(email_id="e" * 36)),
    ConsentPlan(ConsentFlags(force_opt_in=True), (), mapping.DoubleOptIn(language=" PL ", subject="Hi")),
    ConsentPlan(ConsentFlags(force_opt_out=True), ("opted out",), mapping.DoubleOptIn(email_id="x")),
]


@pytest.mark.parametrize("owner", ["o@x.io", " ", ""])
def test_buyer_payload_is_the_contact_upsert_byte_for_byte(owner: str) -> None:
    # The export builds its buyers directly; SALESmanago must receive exactly what real time sends.
    for order in BUYERS:
        for plan in PLANS:
            expected = plan.apply(
                mapping.contact_from_order(order, owner=owner, settings=SETTINGS)
            ).to_payload()
            built = mapping.buyer_payload(
                order,
                owner=owner,
                settings=SETTINGS,
                consent=plan.flags,
                extra_tags=plan.tags,
                double_opt_in=plan.double_opt_in if plan.flags.force_opt_in else None,
            )
            assert json.dumps(built) == json.dumps(expected)


def _sdk_contact_event(event: mapping.ExternalEvent) -> dict[str, Any]:
    # What SALESmanago's SDK sends: the fields cut to their limits, then cleaned (DataHelper).
    fields: dict[str, Any] = {
        "contactExtEventType": event.kind.value,
        "date": event.date_ms,
        "products": event.products,
        "value": event.value,
        "description": event.description,
        "location": event.location,
        "externalId": event.external_id,
        "shopDomain": event.shop_domain,
        "eventId": event.event_id,
    }
    limits = {"products": 512, "description": 2048, "location": 255, "externalId": 255, "shopDomain": 255}
    for name, limit in limits.items():
        if isinstance(fields[name], str):
            fields[name] = fields[name][:limit]
    for index, detail in enumerate(event.details, start=1):
        if detail:
            fields[f"detail{index}"] = str(detail)[:255]
    return clean_payload(fields)


def _sdk_columns(items: list[dict[str, Any]], identifier: str) -> tuple[str, str, str, str, str]:
    # products and the other two identifiers, names, quantities: each column read on its own.
    fields = {"id": "product_id", "sku": "sku", "variant_id": "variant_id"}
    order = [identifier, *[k for k in ("id", "sku", "variant_id") if k != identifier]]
    columns = []
    for kind in order:
        values = [str(i.get(fields[kind]) or "") for i in items]
        columns.append(",".join(v for v in values if v and v != "0"))
    names = ", ".join(str(i.get("name") or "") for i in items)
    quantities = "/".join(str(int(i.get("quantity") or 0)) for i in items)
    return columns[0], columns[1], columns[2], names, quantities


ODD_ITEMS: list[dict[str, Any]] = [
    {"id": 1, "product_id": 0, "variant_id": "0", "sku": " ", "name": None, "quantity": "3"},
    {"id": 2, "product_id": 5, "variant_id": 50, "sku": "S-5", "name": " Cup ", "quantity": None},
    {"id": 3, "product_id": 6, "sku": "CHILD", "name": "Child", "quantity": 1, "parent_order_product_id": 2},
    {"id": 4, "product_id": 7, "sku": "BUNDLED", "name": "B", "quantity": 1, "is_bundled_product": True},
    {"id": 5, "product_id": "8", "variant_id": None, "sku": "x" * 600, "name": "", "quantity": 2},
]


@pytest.mark.parametrize("identifier", ["id", "sku", "variant_id"])
def test_order_event_columns_and_contact_event_are_the_sdks_byte_for_byte(identifier: str) -> None:
    # The export builds every event's columns in one pass and its contactEvent already clean;
    # SALESmanago must receive exactly what the SDK's field-by-field cleaning gives.
    origin = mapping.EventOrigin(identifier, " sm_loc ", "o@x.io")
    orders = [ORDER, {**ORDER, "customer_message": "  ", "payment_method": "p" * 3000, "currency_code": None}]
    for order in orders:
        for items in (LINE_ITEMS, ODD_ITEMS, []):
            event = mapping.order_event(order, items, kind=EventKind.PURCHASE, origin=origin)
            products = [
                i for i in items if not i.get("parent_order_product_id") and not i.get("is_bundled_product")
            ]
            chosen, other1, other2, names, quantities = _sdk_columns(products, identifier)
            assert (event.products, event.details[0], event.details[2]) == (
                chosen or None,
                names or None,
                quantities or None,
            )
            assert (event.details[5], event.details[6]) == (other1 or None, other2 or None)
            for variant in (
                event,
                replace(event, shop_domain=" s ", event_id="", details=(" ", None, "d" * 300)),
            ):
                assert json.dumps(variant.contact_event()) == json.dumps(_sdk_contact_event(variant))
