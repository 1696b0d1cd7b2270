"""The one client for SALESmanago (API v2 for contacts/events/owners, v3 for key management).

Endpoint normalisation, the v2 auth block and the request clean-up (empty values dropped before
sending) live here; what an answer means is `classification`, and sending one call with its
retries and records is `calls`."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, Unpack
from urllib.parse import urlsplit

import msgspec

from smbc.core.answers import AnswerModel
from smbc.core.clock import get_clock
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError, Service
from smbc.salesmanago.answers import (
    ApiKeyCreated,
    BatchAccepted,
    BatchEventsAdded,
    ContactAndEventUpserted,
    ContactLookup,
    ContactsFound,
    ContactUpserted,
    EventSaved,
    IntegrationKeys,
    LoginToken,
    NothingRead,
    Owners,
)

# Re-exported: features import the client's vocabulary from the client, wherever it is defined.
from smbc.salesmanago.calls import CallAttempt as CallAttempt
from smbc.salesmanago.calls import Recorder as Recorder
from smbc.salesmanago.calls import TransportOptions, build_caller
from smbc.salesmanago.calls import record_calls_into as record_calls_into
from smbc.salesmanago.classification import MSG_USER_NOT_AUTHENTICATED as MSG_USER_NOT_AUTHENTICATED
from smbc.salesmanago.classification import UnexpectedAnswerError as UnexpectedAnswerError
from smbc.salesmanago.classification import classify as classify
from smbc.salesmanago.payload import CleanedPayload, clean_payload

A = TypeVar("A", bound=AnswerModel)


class EndpointError(ValueError):
    """The endpoint typed by the merchant is not a host name or an http(s) URL."""


def normalize_endpoint(value: str) -> str:
    """`app3.salesmanago.com` -> `https://app3.salesmanago.com`; a full URL is kept (local fakes)."""
    text = (value or "").strip()  # "https://" must stay a URL without a host, not become host "https:"
    if not text:
        raise EndpointError("Enter the SALESmanago endpoint, for example app3.salesmanago.com.")
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in text):
        raise EndpointError(
            f"{value.strip()!r} is not a SALESmanago endpoint: enter a host such as app3.salesmanago.com."
        )
    if parts.path.rstrip("/") or parts.query or parts.fragment:
        raise EndpointError(
            "Enter only the host of the endpoint (no path), for example app3.salesmanago.com."
        )
    return f"{parts.scheme}://{parts.netloc}"


def endpoint_host(endpoint: str) -> str:
    """The host (and port) without scheme: what /v3/auth/create wants as `endpoint`."""
    return urlsplit(normalize_endpoint(endpoint)).netloc


def compute_sha(api_key: str, client_id: str, api_secret: str) -> str:
    """sha1(apiKey + clientId + apiSecret), lowercase hex: the v2 `sha` SALESmanago checks."""
    return hashlib.sha1((api_key + client_id + api_secret).encode(), usedforsecurity=False).hexdigest()


def new_api_key() -> str:
    """The caller-chosen `apiKey` (any random string; the SDK uses 32 hex chars)."""
    return secrets.token_hex(16)


@dataclass(frozen=True)
class SalesmanagoCredentials:
    endpoint: str  # normalised base URL
    client_id: str
    api_key: str = field(repr=False)
    sha: str = field(repr=False)
    owner: str = ""

    @classmethod
    def from_api_secret(
        cls, endpoint: str, client_id: str, api_secret: str, owner: str, api_key: str | None = None
    ) -> SalesmanagoCredentials:
        key = api_key or new_api_key()
        return cls(
            endpoint=normalize_endpoint(endpoint),
            client_id=client_id.strip(),
            api_key=key,
            sha=compute_sha(key, client_id.strip(), api_secret.strip()),
            owner=owner.strip(),
        )


# ---------------------------------------------------------------------------------------------------
# The authenticated v2 client (contacts, events, owners) and v3 key management
# ---------------------------------------------------------------------------------------------------


class SalesmanagoClient:
    def __init__(self, credentials: SalesmanagoCredentials, **transport: Unpack[TransportOptions]) -> None:
        self.credentials = credentials
        self._caller = build_caller(transport, secrets_to_hide=(credentials.api_key, credentials.sha))

    # -- plumbing -------------------------------------------------------------------------------------

    def auth_block(self, *, with_owner: bool = True) -> dict[str, Any]:
        c = self.credentials
        block: dict[str, Any] = {
            "clientId": c.client_id,
            "apiKey": c.api_key,
            "sha": c.sha,
            "requestTime": int(get_clock().time()),
        }
        if with_owner:
            block["owner"] = c.owner
        return block

    def call(self, path: str, payload: dict[str, Any], answer: type[A], *, once: bool = False) -> A:
        """POST a v2 method: payload cleaned, auth block added (payload keys never override it), the
        answer read as `answer` (exactly the fields the product uses). `once`: see `Caller.post`."""
        body = clean_payload(payload)
        body.update(self.auth_block())
        return self._caller.read(self.credentials.endpoint, path, body, answer, once=once)

    # -- contacts -------------------------------------------------------------------------------------

    def upsert_contact(self, payload: dict[str, Any]) -> str:
        """Synchronous: the answer's contactId means the contact exists now."""
        return self.call("/api/contact/upsert", payload, ContactUpserted).contactId

    def integration_upsert(self, contact_payload: dict[str, Any], event: dict[str, Any]) -> tuple[str, str]:
        """Contact and event in one call (used for PURCHASE)."""
        auth = self.auth_block()  # `call` cleans the whole body once
        contact_request = {**contact_payload, "clientId": auth["clientId"], "owner": auth["owner"]}
        event_request = {**event, "clientId": auth["clientId"], "owner": auth["owner"]}
        event_request.setdefault("forceOptIn", False)
        if event_request.get("contactId"):  # the SDK drops email when both are present
            event_request.pop("email", None)
        body = {"contactUpsertRequest": contact_request, "addContactExtEventRequest": event_request}
        answer = self.call("/api/integration/upsert", body, ContactAndEventUpserted, once=True)
        return answer.contactId, answer.eventId

    def batch_upsert(self, upserts: list[dict[str, Any]]) -> BatchAccepted:
        """Asynchronous: SALESmanago accepts the batch and applies it later, so a contact in it may
        not exist yet when this returns, and the answer carries no contact ids."""
        owner = self.credentials.owner
        details = [_with_owner(owner, item) for item in upserts]
        body = {"upsertDetails": details, "useApiDoubleOptIn": False, "internalIntegration": True}
        return self.call("/api/contact/batchupsertv2", body, BatchAccepted)

    def contact_basic(self, emails: list[str]) -> list[dict[str, Any]]:
        answer = self.call("/api/contact/basic", {"email": list(emails)}, ContactsFound)
        return [contact.model_dump(exclude_unset=True) for contact in answer.contacts]

    def has_contact(self, email: str) -> bool:
        answer = self.call("/api/contact/hasContact", {"email": email}, ContactLookup)
        return bool(answer.result or answer.contactId)

    def delete_contact(self, email: str) -> None:
        self.call("/api/contact/delete", {"email": email}, NothingRead)

    # -- events ---------------------------------------------------------------------------------------

    def add_event(self, event: dict[str, Any]) -> str:
        body = {"forceOptIn": False, **event}
        return self.call("/api/v2/contact/addContactExtEvent", body, EventSaved, once=True).eventId

    def update_event(self, event: dict[str, Any]) -> str:
        return self.call("/api/v2/contact/updateContactExtEvent", event, EventSaved).eventId

    def add_batch_events(self, events: Sequence[dict[str, Any] | msgspec.Raw]) -> BatchEventsAdded:
        """`success` even when some events failed: the answer's failedContacts/failedAmount say which.
        An event encoded already (`msgspec.Raw`, cleaned before it was encoded) is sent as it is."""
        return self.call("/api/v2/contact/addBatchContactExtEvent", {"events": events}, BatchEventsAdded)

    # -- account --------------------------------------------------------------------------------------

    def list_users(self) -> list[str]:
        """The owners list; SALESmanago answering without users is an error (SDK getOwnersList)."""
        users = [u.strip() for u in self.call("/api/user/listByClient", {}, Owners).users if u.strip()]
        if not users:
            raise RemoteCallError(
                Outcome.INVALID, "SALESmanago returned no users for this account", service=Service.SALESMANAGO
            )
        return users


def _with_owner(owner: str, item: dict[str, Any]) -> dict[str, Any]:
    """A `batchupsertv2` detail: the item's owner, else the account's. An item cleaned already stays
    cleaned, its owner first (the client's cleaning then skips it instead of walking it again)."""
    if item.__class__ is CleanedPayload:
        return CleanedPayload({**clean_payload({"owner": item.get("owner", owner)}), **item})
    return {"owner": owner, **item}


class SalesmanagoAccountApi:
    """The calls made before there are v2 credentials (login) and the v3 key management."""

    def __init__(
        self,
        *,
        v3_url: str = "https://api.salesmanago.com",
        secrets_to_hide: tuple[str, ...] = (),
        **transport: Unpack[TransportOptions],
    ) -> None:
        self.v3_url = v3_url.rstrip("/")
        self._caller = build_caller(
            transport,
            secrets_to_hide=secrets_to_hide,
            default_policy=BackoffPolicy(attempts=2, base=0.3),
            default_context="login",
        )
        # The v3 URL is the operator's setting, not an endpoint anyone types: it is allowed as an origin.
        self._v3_allowlist = self._caller.allowlist.with_origin(self.v3_url)

    def token(self, endpoint: str, email: str, password: str) -> dict[str, Any]:
        """/api/authorization/token -> {token, endpoint (the account's real host), smapp}."""
        body = {"username": email, "password": password}
        answer = self._caller.read(normalize_endpoint(endpoint), "/api/authorization/token", body, LoginToken)
        return answer.model_dump()

    def integration(self, endpoint: str, token: str, api_key: str) -> tuple[str, str]:
        """/api/account/integration -> (clientId = shortId, sha = sha1 computed by the server)."""
        body = {"token": token, "apiKey": api_key}
        answer = self._caller.read(
            normalize_endpoint(endpoint), "/api/account/integration", body, IntegrationKeys
        )
        return answer.shortId, answer.sha1

    def v3_create(self, email: str, password: str, endpoint: str, key_name: str) -> str:
        body = {
            "email": email,
            "password": password,
            "keyName": key_name,
            "expiry": "NEVER",
            "endpoint": endpoint_host(endpoint),
        }
        answer = self._caller.read(
            self.v3_url, "/v3/auth/create", body, ApiKeyCreated, api="v3", allowlist=self._v3_allowlist
        )
        return answer.apiKey

    def v3_revoke(self, v3_key: str) -> None:
        """Revoke a v3 key; a key SALESmanago no longer knows (it answers 400 "specified json is not
        valid" or a credentials error) counts as revoked."""
        try:
            self._caller.read(
                self.v3_url,
                "/v3/auth/revoke",
                {"apiKey": v3_key},
                NothingRead,
                api="v3",
                headers={"API-KEY": v3_key},
                allowlist=self._v3_allowlist,
            )
        except RemoteCallError as exc:
            already_gone = exc.outcome is Outcome.CREDENTIALS or (
                exc.status == 400 and "specified json is not valid" in exc.message.lower()
            )
            if not already_gone:
                raise
