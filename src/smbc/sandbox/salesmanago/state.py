"""The fake SALESmanago's memory: accounts, their contacts, events, keys and sent e-mails.

Every change goes through `SalesmanagoState` under one lock, because the server thread and the test
thread both use it. Contacts and events are plain dicts with the API's field names, copied on the way
out so callers cannot change the state behind the lock.
"""

from __future__ import annotations

import copy
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from smbc.core.clock import Clock, get_clock

CONTACT_TEXT_FIELDS = ("name", "phone", "fax", "company", "externalId", "state")
CONTACT_TOP_LEVEL_FIELDS = ("birthday", "province", "lang", "loyaltyProgram")
MAX_RECORDED_CALLS = 20_000  # a long `smbc sandbox` run keeps the newest calls only
# batchupsertv2 is asynchronous: its contacts appear this long after the answer (the fake's clock).
BATCH_DELAY_S = 2.0


class SandboxError(ValueError):
    """A request the fake refuses; the message goes into the response's `message` list."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


@dataclass
class Account:
    client_id: str
    api_secret: str
    email: str
    password: str
    owners: list[str]
    smapp: int
    two_factor: bool = False
    active: bool = True
    revoked: bool = False
    endpoint: str = ""  # the account's own app server; empty = wherever the fake is reached
    callback_opt_in: str = ""
    callback_opt_out: str = ""
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)  # by lower-case email
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # by eventId
    issued_shas: dict[str, str] = field(default_factory=dict)  # apiKey -> sha from /api/account/integration
    v3_keys: dict[str, dict[str, Any]] = field(default_factory=dict)  # active keys
    deleted_contacts: list[dict[str, Any]] = field(default_factory=list)
    confirmation_emails: list[dict[str, Any]] = field(default_factory=list)
    callbacks_sent: list[dict[str, Any]] = field(default_factory=list)

    def has_owner(self, email: object) -> bool:
        return isinstance(email, str) and email.lower() in {o.lower() for o in self.owners}

    def public(self) -> dict[str, Any]:
        return {
            "clientId": self.client_id,
            "email": self.email,
            "owners": list(self.owners),
            "smapp": self.smapp,
            "twoFactor": self.two_factor,
            "active": self.active,
            "revoked": self.revoked,
            "endpoint": self.endpoint,
            "callbackOptIn": self.callback_opt_in,
            "callbackOptOut": self.callback_opt_out,
        }


@dataclass
class PendingBatch:
    """A `batchupsertv2` request accepted and answered, its contacts not applied yet."""

    request_id: str
    client_id: str
    due: datetime
    upserts: list[tuple[dict[str, Any], str]]  # (one validated upsert request, its owner)


class SalesmanagoState:
    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock
        self.lock = threading.RLock()
        self.accounts: dict[str, Account] = {}
        self.login_tokens: dict[str, str] = {}  # token -> client id
        self.calls: list[dict[str, Any]] = []
        self.monitoring_loads: list[dict[str, Any]] = []
        self.batch_delay_s = BATCH_DELAY_S
        self.pending_batches: list[PendingBatch] = []

    # -- time ---------------------------------------------------------------------------------------

    def now(self) -> datetime:
        return (self._clock or get_clock()).now()

    def now_ms(self) -> int:
        return int(self.now().timestamp() * 1000)

    # -- accounts -----------------------------------------------------------------------------------

    def add_account(self, account: Account) -> Account:
        with self.lock:
            self.accounts[account.client_id] = account
        return account

    def account(self, client_id: str) -> Account:
        with self.lock:
            try:
                return self.accounts[client_id]
            except KeyError:
                raise KeyError(f"no sandbox SALESmanago account with client id {client_id!r}") from None

    def account_by_email(self, email: object) -> Account | None:
        if not isinstance(email, str):
            return None
        with self.lock:
            return next((a for a in self.accounts.values() if a.email.lower() == email.lower()), None)

    def account_by_v3_key(self, key: object) -> Account | None:
        if not isinstance(key, str):
            return None
        with self.lock:
            return next((a for a in self.accounts.values() if key in a.v3_keys), None)

    def issue_login_token(self, account: Account) -> str:
        token = secrets.token_urlsafe(24)
        with self.lock:
            self.login_tokens[token] = account.client_id
        return token

    # -- contacts -----------------------------------------------------------------------------------

    def find_contact(
        self, account: Account, email: str | None = None, contact_id: str | None = None
    ) -> dict[str, Any] | None:
        with self.lock:
            if email:
                return account.contacts.get(email.lower())
            if contact_id:
                return next((c for c in account.contacts.values() if c["contactId"] == contact_id), None)
            return None

    def upsert_contact(self, account: Account, request: dict[str, Any], owner: str) -> dict[str, Any]:
        """Apply one validated contact upsert; returns the stored contact (a copy)."""
        with self.lock:
            return copy.deepcopy(self._upsert(account, request, owner))

    def _upsert(self, account: Account, request: dict[str, Any], owner: str) -> dict[str, Any]:
        """`upsert_contact` returning the stored contact itself (a batch's upserts need no copy)."""
        with self.lock:
            data = request["contact"]
            email = data["email"]
            new_email = request.get("newEmail")
            contact = account.contacts.get(email.lower())
            if new_email and new_email.lower() != email.lower():
                taken = account.contacts.get(new_email.lower())
                if taken is not None:
                    raise SandboxError(f"Contact with email {new_email} already exists")
            now = self.now_ms()
            if contact is None:
                contact = self._new_contact(new_email or email, owner, now)
            elif new_email:
                del account.contacts[email.lower()]
                contact["email"] = new_email
            account.contacts[contact["email"].lower()] = contact
            for name in CONTACT_TEXT_FIELDS:
                if data.get(name) not in (None, ""):
                    contact[name] = data[name]
            for name in CONTACT_TOP_LEVEL_FIELDS:
                if request.get(name) not in (None, ""):
                    contact[name] = request[name]
            if isinstance(data.get("address"), dict):
                contact["address"].update({k: v for k, v in data["address"].items() if v not in (None, "")})
            if isinstance(request.get("properties"), dict):
                contact["properties"].update(request["properties"])
            if request.get("consentDetails"):
                contact["consentDetails"] = copy.deepcopy(request["consentDetails"])
            self._apply_tags(contact, request.get("tags") or [], request.get("removeTags") or [])
            self._apply_opt_in(account, contact, request, now)
            contact["modifiedOn"] = now
            return contact

    def _new_contact(self, email: str, owner: str, now: int) -> dict[str, Any]:
        return {
            "contactId": str(uuid.uuid4()),
            "email": email,
            "owner": owner,
            **dict.fromkeys(CONTACT_TEXT_FIELDS + CONTACT_TOP_LEVEL_FIELDS, None),
            "address": {},
            "tags": [],
            "properties": {},
            "consentDetails": [],
            # A new contact without forceOptIn is not subscribed.
            "optedIn": False,
            "phoneOptedIn": False,
            "doubleOptInPending": False,
            "createdOn": now,
            "modifiedOn": now,
        }

    @staticmethod
    def _apply_tags(contact: dict[str, Any], add: list[str], remove: list[str]) -> None:
        removed = {t.strip().lower() for t in remove}
        tags = [t for t in contact["tags"] if t.lower() not in removed]
        for tag in add:
            tag = tag.strip()
            if tag.lower() not in {t.lower() for t in tags}:
                tags.append(tag)
        contact["tags"] = tags

    def _apply_opt_in(
        self, account: Account, contact: dict[str, Any], request: dict[str, Any], now: int
    ) -> None:
        if request.get("forceOptOut"):
            contact["optedIn"] = False
            contact["doubleOptInPending"] = False
        elif request.get("useApiDoubleOptIn") and not contact["optedIn"]:
            # Double opt-in: the contact stays unsubscribed until it confirms the e-mail.
            contact["doubleOptInPending"] = True
            account.confirmation_emails.append(
                {
                    "email": contact["email"],
                    "contactId": contact["contactId"],
                    "sentAt": now,
                    "doubleOptInEmailId": request.get("doubleOptInEmailId"),
                    "doubleOptInLanguage": request.get("doubleOptInLanguage") or request.get("lang"),
                    "templateId": request.get("apiDoubleOptInEmailTemplateId"),
                    "accountId": request.get("apiDoubleOptInEmailAccountId"),
                    "subject": request.get("apiDoubleOptInEmailSubject"),
                    "confirmed": False,
                }
            )
        elif request.get("forceOptIn"):
            contact["optedIn"] = True
            contact["doubleOptInPending"] = False
        if request.get("forcePhoneOptOut"):
            contact["phoneOptedIn"] = False
        elif request.get("forcePhoneOptIn"):
            contact["phoneOptedIn"] = True

    def set_opt_in(self, account: Account, email: str, opted_in: bool) -> dict[str, Any]:
        with self.lock:
            contact = account.contacts.get(email.lower())
            if contact is None:
                raise KeyError(f"no contact {email!r} in account {account.client_id}")
            contact["optedIn"] = opted_in
            contact["doubleOptInPending"] = False
            contact["modifiedOn"] = self.now_ms()
            if opted_in:
                for sent in account.confirmation_emails:
                    if sent["email"].lower() == email.lower():
                        sent["confirmed"] = True
            return copy.deepcopy(contact)

    def delete_contact(self, account: Account, email: str) -> bool:
        """Remove the contact; its events stay, as history of a contact that is gone."""
        with self.lock:
            contact = account.contacts.pop(email.lower(), None)
            if contact is not None:
                contact["modifiedOn"] = self.now_ms()
                account.deleted_contacts.append(contact)
            return contact is not None

    def add_contact(self, account: Account, email: str, owner: str, **fields: Any) -> dict[str, Any]:
        with self.lock:
            now = self.now_ms()
            contact = account.contacts.get(email.lower()) or self._new_contact(email, owner, now)
            for key, value in fields.items():
                if key not in contact:
                    raise TypeError(f"unknown contact field {key!r}")
                contact[key] = copy.deepcopy(value)
            account.contacts[email.lower()] = contact
            return copy.deepcopy(contact)

    # -- asynchronous batches -----------------------------------------------------------------------

    def queue_batch(self, account: Account, upserts: list[tuple[dict[str, Any], str]]) -> str:
        """Accept a batch of validated upserts; they are applied `batch_delay_s` later. Returns its
        request id. A delay of 0 applies them at once."""
        request_id = str(uuid.uuid4())
        with self.lock:
            due = self.now() + timedelta(seconds=self.batch_delay_s)
            self.pending_batches.append(
                PendingBatch(request_id, account.client_id, due, copy.deepcopy(upserts))
            )
            if self.batch_delay_s <= 0:
                self.apply_due_batches()
        return request_id

    def apply_due_batches(self, *, all_now: bool = False) -> int:
        """Apply the batches whose delay has passed on the clock (`all_now`: every one, as if it had);
        returns how many contacts were applied. A contact the batch cannot apply (its new e-mail is
        taken by then) is left out, as the caller of an asynchronous request never hears of it."""
        applied = 0
        with self.lock:
            if not self.pending_batches:
                return 0
            now = self.now()
            due = [b for b in self.pending_batches if all_now or b.due <= now]
            self.pending_batches = [b for b in self.pending_batches if not (all_now or b.due <= now)]
            for batch in sorted(due, key=lambda b: b.due):
                account = self.accounts.get(batch.client_id)
                if account is None:
                    continue
                for request, owner in batch.upserts:
                    try:
                        self._upsert(account, request, owner)
                    except SandboxError:
                        continue
                    applied += 1
        return applied

    def pending_contacts(self, client_id: str) -> int:
        with self.lock:
            return sum(len(b.upserts) for b in self.pending_batches if b.client_id == client_id)

    # -- events -------------------------------------------------------------------------------------

    def add_event(
        self, account: Account, contact: dict[str, Any], owner: str, event: dict[str, Any], path: str
    ) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(account.events[self.store_event(account, contact, owner, event, path)])

    def store_event(
        self, account: Account, contact: dict[str, Any], owner: str, event: dict[str, Any], path: str
    ) -> str:
        """`add_event` without a copy of the stored event back (a batch's events): its id."""
        with self.lock:
            now = self.now_ms()
            fields = _copy_json(event)
            stored = {
                "eventId": str(uuid.uuid4()),
                "type": event["contactExtEventType"],
                "contactId": contact["contactId"],
                "email": contact["email"],
                "owner": owner,
                **fields,
                "createdOn": now,
                "modifiedOn": now,
                "history": [{"time": now, "path": path, "fields": _copy_json(fields)}],
            }
            account.events[stored["eventId"]] = stored
            return stored["eventId"]

    def update_event(self, account: Account, event: dict[str, Any], path: str) -> dict[str, Any]:
        with self.lock:
            stored = account.events.get(event["eventId"])
            if stored is None:
                raise SandboxError(f"Event {event['eventId']} not found")
            changes = {k: v for k, v in event.items() if k != "eventId"}
            stored.update(copy.deepcopy(changes))
            stored["type"] = stored["contactExtEventType"]
            stored["modifiedOn"] = self.now_ms()
            stored["history"].append(
                {"time": stored["modifiedOn"], "path": path, "fields": copy.deepcopy(event)}
            )
            return copy.deepcopy(stored)

    # -- recorded calls -----------------------------------------------------------------------------

    def record_call(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(entry)
            if len(self.calls) > MAX_RECORDED_CALLS:
                del self.calls[: len(self.calls) - MAX_RECORDED_CALLS]

    def record_monitoring_load(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.monitoring_loads.append(entry)


_FLAT = frozenset({str, int, float, bool, type(None)})


def _copy_json(value: dict[str, Any]) -> dict[str, Any]:
    """A copy of a request's object: one of scalars only (an event's fields) by a dict copy, which is
    as independent as a deep copy and a tenth of its cost (a batch stores hundreds), others deep."""
    if all(item.__class__ in _FLAT for item in value.values()):
        return dict(value)
    return copy.deepcopy(value)
