"""What the fake SALESmanago accepts: pure checks that return error messages (empty list = valid).

Rules follow SALESmanago's API documentation. Where it leaves a behaviour open (marked UNCONFIRMED),
the fake takes the stricter of the plausible ones, so that the app is tested against the harder case.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
V3_KEY_RE = re.compile(r"^[a-zA-Z0-9]{1,64}$")

EVENT_TYPES = frozenset(
    {
        "PURCHASE", "CART", "VISIT", "PHONE_CALL", "OTHER", "RESERVATION", "CANCELLED", "ACTIVATION",
        "MEETING", "OFFER", "DOWNLOAD", "LOGIN", "TRANSACTION", "CANCELLATION", "RETURN", "SURVEY",
        "APP_STATUS", "APP_TYPE_WEB", "APP_TYPE_MANUAL", "APP_TYPE_RETENTION", "APP_TYPE_UPSALE",
        "LOAN_STATUS", "LOAN_ORDER", "FIRST_LOAN", "REPEATED_LOAN",
    }
)  # fmt: skip

# SALESmanago's SDK trims these before sending, so a longer value means the app forgot to.
EVENT_TEXT_LIMITS: dict[str, int] = {
    "contactExtEventType": 255,
    "products": 512,
    "description": 2048,
    "location": 255,
    "externalId": 255,
    "shopDomain": 255,
    **{f"detail{i}": 255 for i in range(1, 21)},
}
EVENT_VALUE_MAX_CHARS = 22
EVENT_FIELDS = frozenset({*EVENT_TEXT_LIMITS, "date", "value", "eventId"})
# Anything below this is a UNIX time in seconds (it is 1973-03-03 in milliseconds).
MIN_MILLISECONDS = 100_000_000_000

CONTACT_STATES = frozenset({"CUSTOMER", "PROSPECT", "PARTNER", "OTHER", "UNKNOWN"})
CONTACT_TEXT_LIMITS = {"email": 255, "name": 255, "phone": 255, "fax": 255, "company": 255, "externalId": 255}
ADDRESS_FIELDS = frozenset({"streetAddress", "zipCode", "city", "country"})
TAG_MAX = 255
PROPERTY_VALUE_MAX = 255
BATCH_MAX = 1000  # UNCONFIRMED server maximum; SALESmanago's own plugins send 400, so refuse well above that.

V3_EXPIRY = frozenset({"NEVER", "SEVEN_DAYS", "ONE_MONTH", "THREE_MONTHS", "ONE_YEAR"})


def expected_sha(api_key: str, client_id: str, api_secret: str) -> str:
    return hashlib.sha1((api_key + client_id + api_secret).encode()).hexdigest()  # noqa: S324 - the API's rule


def same_secret(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def is_email(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 255 and bool(EMAIL_RE.match(value))


def request_time_errors(body: dict[str, Any]) -> list[str]:
    value = body.get("requestTime")
    if value is None or value == "":
        return ["requestTime is required"]
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and value.isdigit())
    ):
        return ["requestTime must be a UNIX time (seconds or milliseconds)"]
    return []


def _text(name: str, value: object, limit: int) -> list[str]:
    if not isinstance(value, str):
        return [f"{name} must be a string"]
    if len(value) > limit:
        return [f"{name} is too long ({len(value)} characters, at most {limit})"]
    return []


def _texts(name: str, value: object, limit: int, *, known: frozenset[str] | None = None) -> list[str]:
    """An optional object of texts: with `known`, only those keys, each null or a string; without,
    any keys, every value a string."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [f"{name} must be an object" if known else f"{name} must be an object of strings"]
    errors: list[str] = []
    for key, text in value.items():
        if known is not None and key not in known:
            errors.append(f"{name}.{key} is not a known field")
        elif text is not None or known is None:
            errors += _text(f"{name}.{key}", text, limit)
    return errors


def _flag(body: dict[str, Any], name: str) -> list[str]:
    if name in body and not isinstance(body[name], bool):
        return [f"{name} must be true or false"]
    return []


def _tags(name: str, value: object) -> list[str]:
    if not isinstance(value, list):
        return [f"{name} must be an array of strings"]
    errors = []
    for tag in value:
        if not isinstance(tag, str) or not tag.strip():
            errors.append(f"{name} must contain non-empty strings")
        elif len(tag) > TAG_MAX:
            errors.append(f"{name}: tag {tag[:20]!r}… is too long ({len(tag)} characters, at most {TAG_MAX})")
    return errors


def contact_upsert_errors(body: dict[str, Any]) -> list[str]:
    """One contact upsert (the body of /api/contact/upsert or one item of batchupsertv2)."""
    contact = body.get("contact")
    if not isinstance(contact, dict):
        return ["contact is required"]
    errors: list[str] = []
    if not contact.get("email"):
        errors.append("contact.email is required")
    elif not is_email(contact["email"]):
        errors.append(f"contact.email is not a valid email address: {contact['email']!r}")
    for field, limit in CONTACT_TEXT_LIMITS.items():
        if field != "email" and contact.get(field) is not None:
            errors += _text(f"contact.{field}", contact[field], limit)
    if "state" in contact and contact["state"] not in CONTACT_STATES:
        errors.append(f"contact.state must be one of {', '.join(sorted(CONTACT_STATES))}")
    errors += _texts("contact.address", contact.get("address"), 255, known=ADDRESS_FIELDS)
    if body.get("newEmail") is not None and not is_email(body["newEmail"]):
        errors.append(f"newEmail is not a valid email address: {body['newEmail']!r}")
    for flag in ("forceOptIn", "forceOptOut", "forcePhoneOptIn", "forcePhoneOptOut", "useApiDoubleOptIn"):
        errors += _flag(body, flag)
    if body.get("forceOptIn") is True and body.get("forceOptOut") is True:
        errors.append("forceOptIn and forceOptOut cannot both be true")
    if body.get("forcePhoneOptIn") is True and body.get("forcePhoneOptOut") is True:
        errors.append("forcePhoneOptIn and forcePhoneOptOut cannot both be true")
    for name in ("tags", "removeTags"):
        if name in body and body[name] is not None:
            errors += _tags(name, body[name])
    errors += _texts("properties", body.get("properties"), PROPERTY_VALUE_MAX)
    birthday = body.get("birthday")
    if birthday is not None and not (isinstance(birthday, str) and re.fullmatch(r"\d{8}", birthday)):
        errors.append("birthday must be YYYYMMDD")
    lang = body.get("lang")
    if lang is not None and not (isinstance(lang, str) and re.fullmatch(r"[A-Za-z]{2}", lang)):
        errors.append("lang must be a 2-letter language code")
    return errors


def event_errors(event: object, *, updating: bool) -> list[str]:
    """A `contactEvent` object; an update needs only eventId and the changed fields."""
    if not isinstance(event, dict):
        return ["contactEvent is required"]
    errors: list[str] = []
    unknown = sorted(set(event) - EVENT_FIELDS)
    if unknown:
        errors.append(f"contactEvent has unknown fields: {', '.join(unknown)}")
    if updating:
        if not event.get("eventId"):
            errors.append("contactEvent.eventId is required to update an event")
    elif "eventId" in event:
        errors.append("contactEvent.eventId is only allowed when updating an event")
    kind = event.get("contactExtEventType")
    if kind is None:
        if not updating:
            errors.append("contactEvent.contactExtEventType is required")
    elif not isinstance(kind, str) or kind not in EVENT_TYPES:
        if isinstance(kind, str) and kind.upper() in EVENT_TYPES:
            errors.append(f"contactEvent.contactExtEventType must be upper-case: {kind.upper()}, not {kind}")
        else:
            errors.append(f"contactEvent.contactExtEventType is not a known event type: {kind!r}")
    if "date" in event or not updating:
        errors += _date_errors(event.get("date"))
    if "value" in event and event["value"] is not None:
        value = event["value"]
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append("contactEvent.value must be a number")
        elif len(repr(value)) > EVENT_VALUE_MAX_CHARS:
            errors.append(f"contactEvent.value is too long (at most {EVENT_VALUE_MAX_CHARS} characters)")
    for field, limit in EVENT_TEXT_LIMITS.items():
        if field != "contactExtEventType" and event.get(field) is not None:
            errors += _text(f"contactEvent.{field}", event[field], limit)
    return errors


def _date_errors(value: object) -> list[str]:
    if value is None:
        return ["contactEvent.date is required (epoch milliseconds)"]
    if isinstance(value, bool) or not isinstance(value, int):
        return [f"contactEvent.date must be epoch milliseconds (an integer), got {value!r}"]
    if value < MIN_MILLISECONDS:
        return [f"contactEvent.date must be in milliseconds, {value} looks like seconds"]
    return []


def contact_reference_errors(body: dict[str, Any]) -> list[str]:
    """Events name their contact by `email` or `contactId` (outside contactEvent)."""
    if body.get("email") in (None, "") and body.get("contactId") in (None, ""):
        return ["email or contactId is required"]
    if body.get("email") not in (None, "") and not is_email(body["email"]):
        return [f"email is not a valid email address: {body['email']!r}"]
    return []
