"""Settings validation (every key), the key/text form, and storage with the change log."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from smbc.core import encryption
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.settings.models import SettingsChange
from smbc.settings.store_settings import (
    SETTINGS_KEYS,
    SettingsInvalid,
    StoreSettings,
    apply_changes,
    default_location,
    load_store_settings,
    normalize_tags,
    save_store_settings,
    settings_to_keys,
)


def errors_of(
    changes: dict[str, object], current: StoreSettings | None = None, **kw: object
) -> dict[str, str]:
    with pytest.raises(SettingsInvalid) as info:
        apply_changes(current or StoreSettings(), changes, **kw)  # type: ignore[arg-type]
    return info.value.errors


# -- tags ------------------------------------------------------------------------------------------------


def test_tags_upper_case_underscores_no_duplicates() -> None:
    assert normalize_tags(" bc register, vip  customer ,BC_REGISTER,, Vip Customer ") == [
        "BC_REGISTER",
        "VIP_CUSTOMER",
    ]
    updated = apply_changes(StoreSettings(), {"tags.purchase": "buyer, big  spender", "tags.newsletter": ""})
    assert updated.tags_purchase == ["BUYER", "BIG_SPENDER"]
    assert updated.tags_newsletter == []


def test_tag_too_long() -> None:
    assert "255" in errors_of({"tags.registration": "x" * 256})["tags.registration"]


# -- location --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["sm_abc", "_x1", "Shop_2024", "a" * 36, "abc"])
def test_location_accepted(value: str) -> None:
    assert apply_changes(StoreSettings(), {"location.1": value}).locations == {1: value}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("ab", "3 to 36"),
        ("a" * 37, "3 to 36"),
        ("1shop", "must not start with a digit"),
        ("my shop", "only letters, digits and _"),
        ("shop-1", "only letters, digits and _"),
        ("sklep_ł", "only letters, digits and _"),
    ],
)
def test_location_refused(value: str, fragment: str) -> None:
    assert fragment in errors_of({"location.1": value})["location.1"]


def test_location_empty_means_default_and_unknown_channel_refused() -> None:
    current = StoreSettings(locations={1: "custom_one"})
    assert apply_changes(current, {"location.1": ""}).locations == {}
    assert "no storefront channel 7" in errors_of({"location.7": "shop_x"}, channel_ids={1, 2})["location.7"]
    assert "Unknown setting" in errors_of({"location.x": "shop_x"})["location.x"]
    assert StoreSettings().location_for(1, "https://a.test") == default_location("https://a.test")


# -- double opt-in ----------------------------------------------------------------------------------------


def test_double_opt_in_all_or_nothing() -> None:
    all_set = {
        "double_opt_in.enabled": "true",
        "double_opt_in.template_id": "12",
        "double_opt_in.account_id": "34",
        "double_opt_in.subject": "Confirm",
    }
    updated = apply_changes(StoreSettings(), all_set)
    assert (updated.double_opt_in_enabled, updated.double_opt_in_subject) == (True, "Confirm")
    none_set = {
        **all_set,
        "double_opt_in.template_id": "",
        "double_opt_in.account_id": "",
        "double_opt_in.subject": "",
    }
    assert apply_changes(StoreSettings(), none_set).double_opt_in_template_id == ""
    errors = errors_of({**all_set, "double_opt_in.account_id": "", "double_opt_in.subject": " "})
    assert set(errors) == {"double_opt_in.account_id", "double_opt_in.subject"}
    assert "all three" in errors["double_opt_in.subject"]
    # Clearing one of three saved values is refused too.
    saved = apply_changes(StoreSettings(), all_set)
    assert set(errors_of({"double_opt_in.template_id": ""}, saved)) == {"double_opt_in.template_id"}


# -- booleans, choices, numbers ---------------------------------------------------------------------------


def test_booleans() -> None:
    updated = apply_changes(StoreSettings(), {"opt_in_sync": "yes", "monitoring.enabled": "off"})
    assert updated.opt_in_sync is True and updated.monitoring_enabled is False
    assert "true or false" in errors_of({"opt_in_sync": "maybe"})["opt_in_sync"]


def test_cart_window_product_identifier_consent_choices() -> None:
    updated = apply_changes(
        StoreSettings(),
        {
            "cart_event_window": "7d",
            "product_identifier": "variant_id",
            "monitoring.consent_category": "targeting",
        },
    )
    assert (updated.cart_event_window, updated.product_identifier) == ("7d", "variant_id")
    errors = errors_of(
        {"cart_event_window": "2h", "product_identifier": "ean", "monitoring.consent_category": "x"}
    )
    assert "always_new, 15m, 1h, 4h, 12h, 7d, always_update" in errors["cart_event_window"]
    assert set(errors) == {"cart_event_window", "product_identifier", "monitoring.consent_category"}


@pytest.mark.parametrize(("value", "expected"), [("1", 1), ("3652", 3652), (" 30 ", 30), ("", None)])
def test_cookie_days_accepted(value: str, expected: int | None) -> None:
    assert (
        apply_changes(StoreSettings(), {"monitoring_cookie_days": value}).monitoring_cookie_days == expected
    )


@pytest.mark.parametrize("value", ["0", "3653", "-1", "1.5", "ten"])
def test_cookie_days_refused(value: str) -> None:
    assert "1 to 3652" in errors_of({"monitoring_cookie_days": value})["monitoring_cookie_days"]


def test_purchase_statuses_and_channels() -> None:
    updated = apply_changes(StoreSettings(), {"purchase_statuses": "10, 2,2", "monitoring.channels": "3,1"})
    assert updated.purchase_statuses == [2, 10] and updated.monitoring_channels == [1, 3]
    assert apply_changes(StoreSettings(), {"monitoring.channels": "all"}).monitoring_channels == "all"
    assert "at least one" in errors_of({"purchase_statuses": ""})["purchase_statuses"]
    assert "1 to 14" in errors_of({"purchase_statuses": "2,15"})["purchase_statuses"]
    assert "1 to 14" in errors_of({"purchase_statuses": "0"})["purchase_statuses"]
    assert "numbers" in errors_of({"purchase_statuses": "shipped"})["purchase_statuses"]
    assert "channel id" in errors_of({"newsletter_channel": "0"})["newsletter_channel"]


# -- domains and owner -----------------------------------------------------------------------------------


def test_ignored_domains_normalised() -> None:
    updated = apply_changes(
        StoreSettings(), {"ignored_domains": " Temp-Mail.com ,10minutemail.net, temp-mail.com,@x.co.uk"}
    )
    assert updated.ignored_domains == ["temp-mail.com", "10minutemail.net", "x.co.uk"]


@pytest.mark.parametrize("bad", ["not a domain", "localhost", "exa_mple.com", "-bad.com", "a@b.com"])
def test_ignored_domains_refused(bad: str) -> None:
    message = errors_of({"ignored_domains": f"ok.com, {bad}"})["ignored_domains"]
    assert bad in message and "ok.com" not in message.split(":")[1].split(".")[0]


def test_contact_owner_must_be_listed() -> None:
    owners = ["Boss@shop.test", "team@shop.test"]
    assert apply_changes(
        StoreSettings(), {"contact_owner": "boss@shop.test"}, owners=owners
    ).contact_owner == ("boss@shop.test")
    assert "from the list" in errors_of({"contact_owner": "other@shop.test"}, owners=owners)["contact_owner"]
    assert "e-mail" in errors_of({"contact_owner": "nobody"})["contact_owner"]


def test_unknown_key_and_several_errors_at_once() -> None:
    errors = errors_of({"nope": "1", "cart_event_window": "x", "tags.purchase": "fine"})
    assert set(errors) == {"nope", "cart_event_window"}


def test_keys_round_trip() -> None:
    keys = settings_to_keys(StoreSettings())
    assert list(keys) == list(SETTINGS_KEYS)
    assert keys["purchase_statuses"] == "2,3,8,9,10,11"
    assert keys["monitoring_cookie_days"] == "" and keys["monitoring.channels"] == "all"
    assert apply_changes(StoreSettings(), keys) == StoreSettings()


# -- storage and change log ---------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Database:
    encryption.configure([Fernet.generate_key().decode()])
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    database.upgrade()
    return database


def test_save_keeps_other_values_and_logs_each_change(db: Database) -> None:
    with db.session() as s:
        store = Store(hash="abc")
        s.add(store)
        s.flush()
        store_id = store.id
        assert load_store_settings(s, store_id) == StoreSettings()
        save_store_settings(
            s, store_id, {"tags.purchase": "vip", "location.1": "shop_one"}, "alice@shop.test"
        )
    with db.session() as s:
        save_store_settings(s, store_id, {"cart_event_window": "1h", "tags.purchase": "vip"}, "bob@shop.test")
    with db.session() as s:
        loaded = load_store_settings(s, store_id)
        assert loaded.tags_purchase == ["VIP"] and loaded.cart_event_window == "1h"
        assert loaded.locations == {1: "shop_one"}
        log = s.scalars(select(SettingsChange).order_by(SettingsChange.id)).all()
        assert [(c.actor, c.key, c.old_value, c.new_value) for c in log] == [
            ("alice@shop.test", "location.1", "", "shop_one"),
            ("alice@shop.test", "tags.purchase", "", "VIP"),
            ("bob@shop.test", "cart_event_window", "12h", "1h"),
        ]
        assert all(c.changed_at is not None for c in log)


def test_invalid_save_changes_nothing(db: Database) -> None:
    with db.session() as s:
        store = Store(hash="abc")
        s.add(store)
        s.flush()
        save_store_settings(s, store.id, {"tags.purchase": "vip"}, "alice")
        with pytest.raises(SettingsInvalid):
            save_store_settings(s, store.id, {"tags.purchase": "other", "cart_event_window": "bad"}, "alice")
        assert load_store_settings(s, store.id).tags_purchase == ["VIP"]
        assert len(s.scalars(select(SettingsChange)).all()) == 1
