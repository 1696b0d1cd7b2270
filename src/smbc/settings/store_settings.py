"""A store's settings: one typed model with defaults (keys as in DESIGN.md, dots become `_`).

Storage, validation messages and the change log are added by the SALESmanago-account area; every
other area only reads `StoreSettings` through `load_store_settings()`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, get_args

from pydantic import BaseModel, Field
from sqlalchemy import select

from smbc.settings.models import SettingsChange, StoreSettingsRow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

CartEventWindow = Literal["always_new", "15m", "1h", "4h", "12h", "7d", "always_update"]
ProductIdentifier = Literal["id", "sku", "variant_id"]
ConsentCategory = Literal["essential", "functional", "analytics", "targeting"]

# BigCommerce status ids: Awaiting Fulfillment, Awaiting Shipment, Awaiting Pickup, Partially Shipped,
# Shipped, Completed. Never Incomplete (0).
DEFAULT_PURCHASE_STATUSES = [2, 3, 8, 9, 10, 11]


def default_location(primary_url: str) -> str:
    """The storefront's default SALESmanago location: `sm_` + md5 of its primary URL."""
    return "sm_" + hashlib.md5(primary_url.encode(), usedforsecurity=False).hexdigest()


class StoreSettings(BaseModel):
    locations: dict[int, str] = Field(default_factory=dict)  # channel id -> e-store ID
    catalogs: dict[int, str] = Field(default_factory=dict)  # channel id -> SALESmanago catalog id
    contact_owner: str = ""
    double_opt_in_enabled: bool = False
    double_opt_in_template_id: str = ""
    double_opt_in_account_id: str = ""
    double_opt_in_subject: str = ""
    # SALESmanago's newer style: the confirmation e-mail named by its id, in a chosen language.
    double_opt_in_email_id: str = ""
    double_opt_in_language: str = ""
    opt_in_sync: bool = False
    tags_registration: list[str] = Field(default_factory=list)
    tags_newsletter: list[str] = Field(default_factory=list)
    tags_purchase: list[str] = Field(default_factory=list)
    tags_guest_purchase: list[str] = Field(default_factory=list)
    cart_event_window: CartEventWindow = "12h"
    monitoring_cookie_days: int | None = None
    ignored_domains: list[str] = Field(default_factory=list)
    product_identifier: ProductIdentifier = "id"
    purchase_statuses: list[int] = Field(default_factory=lambda: list(DEFAULT_PURCHASE_STATUSES))
    delete_contact_on_customer_delete: bool = False
    newsletter_channel: int = 1
    monitoring_enabled: bool = True
    monitoring_custom_script: bool = False
    monitoring_banners: bool = False
    monitoring_popups: bool = False
    monitoring_channels: Literal["all"] | list[int] = "all"
    monitoring_consent_category: ConsentCategory = "analytics"
    # Besides the store owner, the users (BigCommerce e-mails) who may connect, disconnect and
    # re-point SALESmanago and see the callback token.
    managers: list[str] = Field(default_factory=list)

    def location_for(self, channel_id: int, primary_url: str) -> str:
        return self.locations.get(channel_id) or default_location(primary_url)


# ---------------------------------------------------------------------------------------------------
# Keys (DESIGN.md), text form, validation, storage and the change log
# ---------------------------------------------------------------------------------------------------

# The Account tab's keys besides `managers`: who SALESmanago assigns contacts to, double opt-in,
# whether SALESmanago may change subscriptions.
ACCOUNT_KEYS: tuple[str, ...] = (
    "contact_owner",
    "double_opt_in.enabled",
    "double_opt_in.template_id",
    "double_opt_in.account_id",
    "double_opt_in.subject",
    "double_opt_in.email_id",
    "double_opt_in.language",
    "opt_in_sync",
)
# Plain keys in display order; `location.<channel_id>` keys come first, per storefront.
SETTINGS_KEYS: tuple[str, ...] = (
    *ACCOUNT_KEYS,
    "tags.registration",
    "tags.newsletter",
    "tags.purchase",
    "tags.guest_purchase",
    "cart_event_window",
    "monitoring_cookie_days",
    "ignored_domains",
    "product_identifier",
    "purchase_statuses",
    "delete_contact_on_customer_delete",
    "newsletter_channel",
    "monitoring.enabled",
    "monitoring.custom_script",
    "monitoring.banners",
    "monitoring.popups",
    "monitoring.channels",
    "monitoring.consent_category",
    "managers",
)
LOCATION_PREFIX = "location."
CATALOG_PREFIX = "catalog."
CATALOG_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LOCATION_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]+$")
LOCATION_MIN, LOCATION_MAX = 3, 36
COOKIE_DAYS_MIN, COOKIE_DAYS_MAX = 1, 3652
TAG_MAX = 255
DOI_FIELD_MAX = 255
# The confirmation e-mail's id as SALESmanago shows it (a 36-character UUID).
DOI_EMAIL_ID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DOI_LANGUAGE_RE = re.compile(r"^[A-Za-z]{2}$")
# BigCommerce order status ids (1 Pending … 14 Partially Refunded); 0 (Incomplete) is never a purchase.
ORDER_STATUS_IDS = range(1, 15)
_DOMAIN_RE = re.compile(
    r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$"
)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_TRUE = {"true", "1", "yes", "on", "y"}
_FALSE = {"false", "0", "no", "off", "n", ""}

CART_EVENT_WINDOWS: tuple[str, ...] = get_args(CartEventWindow)
PRODUCT_IDENTIFIERS: tuple[str, ...] = get_args(ProductIdentifier)
CONSENT_CATEGORIES: tuple[str, ...] = get_args(ConsentCategory)
_BOOL_FIELDS = {
    "double_opt_in.enabled": "double_opt_in_enabled",
    "opt_in_sync": "opt_in_sync",
    "delete_contact_on_customer_delete": "delete_contact_on_customer_delete",
    "monitoring.enabled": "monitoring_enabled",
    "monitoring.custom_script": "monitoring_custom_script",
    "monitoring.banners": "monitoring_banners",
    "monitoring.popups": "monitoring_popups",
}
_DOI_TEXT_KEYS = ("double_opt_in.template_id", "double_opt_in.account_id", "double_opt_in.subject")
_DOI_NEW_KEYS = ("double_opt_in.email_id", "double_opt_in.language")
_TAG_KEYS = ("tags.registration", "tags.newsletter", "tags.purchase", "tags.guest_purchase")


class SettingsInvalid(ValueError):
    """Some values were refused; `errors` maps each settings key to what is wrong with it."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{key}: {message}" for key, message in errors.items()))
        self.errors = errors


def field_name(key: str) -> str:
    """The form field / model attribute for a key: dots become `_` (`location.1` -> `location_1`)."""
    return key.replace(".", "_")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | set):
        return ",".join(str(v) for v in value)
    return str(value).strip()


def normalize_tags(value: object) -> list[str]:
    """Comma-separated tags -> upper-case, spaces as `_`, empties and duplicates removed, order kept."""
    tags: list[str] = []
    for part in _text(value).split(","):
        tag = "_".join(part.split()).upper()
        if tag and tag not in tags:
            tags.append(tag)
    return tags


def parse_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = _text(value).lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("Use true or false.")


def _int_list(text: str, what: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit():
            raise ValueError(f"{part!r} is not a {what}: use numbers separated by commas.")
        number = int(part)
        if number not in out:
            out.append(number)
    return out


def settings_to_keys(settings: StoreSettings, locations: dict[int, str] | None = None) -> dict[str, str]:
    """Every key with its text value (as `smbc settings show` prints it and the change log stores it).

    `locations` are the effective per-channel values (defaults filled in by the caller)."""
    out: dict[str, str] = {}
    for channel_id, location in sorted((locations or settings.locations).items()):
        out[f"{LOCATION_PREFIX}{channel_id}"] = location
    for channel_id, catalog_id in sorted(settings.catalogs.items()):
        out[f"{CATALOG_PREFIX}{channel_id}"] = catalog_id
    data = settings.model_dump()
    for key in SETTINGS_KEYS:
        out[key] = _text(data[field_name(key)])
    return out


def apply_changes(
    current: StoreSettings,
    changes: dict[str, object],
    *,
    owners: list[str] | None = None,
    channel_ids: set[int] | None = None,
) -> StoreSettings:
    """`current` with `changes` ({key: value as text or typed}) applied, or SettingsInvalid.

    Only the keys given change, so one tab's save never touches another tab's values.
    `owners`: the account's owners list (the contact owner must be one of them when known).
    `channel_ids`: the store's storefront channels (a location for another channel is refused)."""
    errors: dict[str, str] = {}
    update: dict[str, object] = {}
    per_channel = {name: dict(getattr(current, name)) for name, _ in _PER_CHANNEL.values()}
    for key, raw in changes.items():
        try:
            prefix = next((p for p in _PER_CHANNEL if key.startswith(p)), None)
            if prefix is not None:
                name, check = _PER_CHANNEL[prefix]
                channel_id = _channel_of(key, prefix, channel_ids)
                value = check(_text(raw))
                if value:
                    per_channel[name][channel_id] = value
                else:  # empty: a location back to its default, a catalog no longer synced
                    per_channel[name].pop(channel_id, None)
            elif key in _BOOL_FIELDS:
                update[_BOOL_FIELDS[key]] = parse_bool(raw)
            else:
                update[field_name(key)] = _parse_value(key, raw, owners)
        except KeyError:
            errors[key] = f"Unknown setting {key!r}."
        except ValueError as exc:
            errors[key] = str(exc)
    merged = current.model_copy(update={**update, **per_channel})
    errors.update(_double_opt_in_errors(merged, changes, errors))
    if errors:
        raise SettingsInvalid(errors)
    return StoreSettings.model_validate(merged.model_dump())


def _double_opt_in_errors(
    merged: StoreSettings, changes: dict[str, object], errors: dict[str, str]
) -> dict[str, str]:
    """The rules between the double opt-in fields, checked only when a save touches one of them (so
    another tab's save never fails over them): the template, account and subject are all empty
    (SALESmanago's own e-mail) or all set; a language goes with an e-mail id."""
    if not any(k in changes for k in (*_DOI_TEXT_KEYS, *_DOI_NEW_KEYS, "double_opt_in.enabled")):
        return {}
    found: dict[str, str] = {}
    doi = {k: getattr(merged, field_name(k)) for k in _DOI_TEXT_KEYS}
    if any(doi.values()) and not all(doi.values()):
        for key, value in doi.items():
            if not value and key not in errors:
                found[key] = (
                    "Fill in all three of email template ID, email account ID and email subject, "
                    "or leave all three empty to use SALESmanago's own confirmation e-mail."
                )
    already_refused = "double_opt_in.language" in errors or "double_opt_in.email_id" in errors
    if merged.double_opt_in_language and not merged.double_opt_in_email_id and not already_refused:
        found["double_opt_in.language"] = (
            "The language is that of the confirmation e-mail chosen by its ID: fill in the "
            "confirmation e-mail ID too, or leave the language empty."
        )
    return found


def _channel_of(key: str, prefix: str, channel_ids: set[int] | None) -> int:
    """The storefront channel a per-storefront key (`location.1`) names; KeyError when it names none."""
    suffix = key[len(prefix) :]
    if not suffix.isdigit():
        raise KeyError(key)
    channel_id = int(suffix)
    if channel_ids is not None and channel_id not in channel_ids:
        raise ValueError(f"This store has no storefront channel {channel_id}.")
    return channel_id


def _check_location(location: str) -> str:
    if location and not LOCATION_MIN <= len(location) <= LOCATION_MAX:
        raise ValueError(f"The e-store ID must be {LOCATION_MIN} to {LOCATION_MAX} characters long.")
    if location and not LOCATION_RE.match(location):
        raise ValueError(
            "The e-store ID may contain only letters, digits and _, and must not start with a digit."
        )
    return location


def _check_catalog_id(catalog_id: str) -> str:
    if catalog_id and not CATALOG_ID_RE.match(catalog_id):
        raise ValueError("A catalog id is 1 to 64 letters, digits, - or _ (pick one from the list).")
    return catalog_id


# Per-storefront keys (`<prefix><channel_id>`): the StoreSettings dict each fills and its value check.
_PER_CHANNEL: dict[str, tuple[str, Callable[[str], str]]] = {
    LOCATION_PREFIX: ("locations", _check_location),
    CATALOG_PREFIX: ("catalogs", _check_catalog_id),
}


def _parse_value(key: str, raw: object, owners: list[str] | None) -> object:
    text = _text(raw)
    if key == "contact_owner":
        owner = text.lower()
        if owner and not _EMAIL_RE.match(owner):
            raise ValueError("Enter the e-mail address of a SALESmanago user.")
        if owner and owners and owner not in [o.lower() for o in owners]:
            raise ValueError("Choose an owner from the list (refresh the list if someone is missing).")
        return owner
    if key in _DOI_TEXT_KEYS:
        if len(text) > DOI_FIELD_MAX:
            raise ValueError(f"At most {DOI_FIELD_MAX} characters.")
        return text
    if key == "double_opt_in.email_id":
        if text and not DOI_EMAIL_ID_RE.match(text):
            raise ValueError(
                "Paste the confirmation e-mail's ID as SALESmanago shows it: 36 characters like "
                "0f8fad5b-d9cb-469f-a165-70867728950e (e-mail list, subscription confirmation, preview)."
            )
        return text  # as SALESmanago shows it: whether its ids compare ignoring case is unknown
    if key == "double_opt_in.language":
        if text and not DOI_LANGUAGE_RE.match(text):
            raise ValueError(
                "Use a two-letter language code such as EN or PL, or leave it empty for the store's language."
            )
        return text.upper()
    if key in _TAG_KEYS:
        tags = normalize_tags(text)
        too_long = [t for t in tags if len(t) > TAG_MAX]
        if too_long:
            raise ValueError(f"A tag can be at most {TAG_MAX} characters long.")
        return tags
    if key == "cart_event_window":
        return _choice(text, CART_EVENT_WINDOWS)
    if key == "monitoring_cookie_days":
        if not text:
            return None
        if not text.isdigit() or not COOKIE_DAYS_MIN <= int(text) <= COOKIE_DAYS_MAX:
            raise ValueError(f"Enter a whole number of days from {COOKIE_DAYS_MIN} to {COOKIE_DAYS_MAX}.")
        return int(text)
    if key == "ignored_domains":
        return _parse_domains(text)
    if key == "managers":
        return _parse_emails(text)
    if key == "product_identifier":
        return _choice(text, PRODUCT_IDENTIFIERS)
    if key == "purchase_statuses":
        statuses = _int_list(text, "order status id")
        if not statuses:
            raise ValueError("Choose at least one order status that counts as a purchase.")
        wrong = [s for s in statuses if s not in ORDER_STATUS_IDS]
        if wrong:
            raise ValueError(f"Unknown BigCommerce order status id {wrong[0]} (use 1 to 14).")
        return sorted(statuses)
    if key == "newsletter_channel":
        if not text.isdigit() or int(text) < 1:
            raise ValueError("Enter a channel id (a whole number, 1 for the default storefront).")
        return int(text)
    if key == "monitoring.channels":
        if text.lower() in ("all", ""):
            return "all"
        channels = _int_list(text, "channel id")
        if not channels:
            raise ValueError("Use all, or channel ids separated by commas.")
        return sorted(channels)
    if key == "monitoring.consent_category":
        return _choice(text, CONSENT_CATEGORIES)
    raise KeyError(key)


def _choice(text: str, allowed: tuple[str, ...]) -> str:
    if text not in allowed:
        raise ValueError(f"Choose one of: {', '.join(allowed)}.")
    return text


def _parse_list(
    text: str, normalize: Callable[[str], str], valid: Callable[[str], object], problem: str
) -> list[str]:
    """A comma-separated list, each part normalized (empty ones skipped), without repeats; a
    ValueError (`problem` with {bad}) names every part that is not valid."""
    values: list[str] = []
    bad: list[str] = []
    for part in text.split(","):
        value = normalize(part)
        if not value:
            continue
        if not valid(value):
            bad.append(part.strip())
        elif value not in values:
            values.append(value)
    if bad:
        raise ValueError(problem.format(bad=", ".join(bad)))
    return values


def _parse_domains(text: str) -> list[str]:
    return _parse_list(
        text,
        lambda part: part.strip().lower().lstrip("@").rstrip("."),
        _DOMAIN_RE.match,
        "Not a domain name: {bad}. Use domains like temp-mail.com, separated by commas.",
    )


def _parse_emails(text: str) -> list[str]:
    return _parse_list(
        text,
        lambda part: part.strip().lower(),
        lambda email: len(email) <= 320 and _EMAIL_RE.match(email),
        "Not an e-mail address: {bad}. Use the users' e-mail addresses, separated by commas.",
    )


# -- storage -------------------------------------------------------------------------------------------


def load_store_settings(session: Session, store_id: int) -> StoreSettings:
    """The store's saved settings, defaults for anything never saved."""
    row = session.scalar(select(StoreSettingsRow).where(StoreSettingsRow.store_id == store_id))
    if row is None:
        return StoreSettings()
    return StoreSettings.model_validate(row.data or {})


def save_store_settings(
    session: Session,
    store_id: int,
    changes: dict[str, object],
    actor: str,
    *,
    owners: list[str] | None = None,
    channel_ids: set[int] | None = None,
) -> StoreSettings:
    """Validate and save `changes` ({key: value}); one `SettingsChange` row per key whose value changed.

    Raises SettingsInvalid (nothing saved). The row is locked so two saves from two tabs cannot
    overwrite each other's keys."""
    row = session.scalar(
        select(StoreSettingsRow).where(StoreSettingsRow.store_id == store_id).with_for_update()
    )
    current = StoreSettings.model_validate(row.data or {}) if row is not None else StoreSettings()
    updated = apply_changes(current, changes, owners=owners, channel_ids=channel_ids)
    before, after = settings_to_keys(current), settings_to_keys(updated)
    changed = [k for k in dict.fromkeys([*after, *before]) if before.get(k, "") != after.get(k, "")]
    if not changed:
        return updated
    if row is None:
        row = StoreSettingsRow(store_id=store_id, data={})
        session.add(row)
    row.data = updated.model_dump(mode="json")
    for key in changed:
        session.add(
            SettingsChange(
                store_id=store_id,
                actor=actor[:320],
                key=key[:64],
                old_value=before.get(key, ""),
                new_value=after.get(key, ""),
            )
        )
    session.flush()
    return updated


def record_change(session: Session, store_id: int, actor: str, key: str, old: str, new: str) -> None:
    """Log an account-level change (log in, log out, token rotation) next to the settings changes."""
    session.add(
        SettingsChange(store_id=store_id, actor=actor[:320], key=key[:64], old_value=old, new_value=new)
    )
