"""The one client for SALESmanago (API v2 for contacts/events/owners, v3 for key management).

Everything about talking to SALESmanago lives here: endpoint normalisation, the v2 auth block, the
request clean-up (empty values dropped before sending), the ONE table that turns an answer into an
`Outcome`, the in-call retry loop and a record of every attempt for a `RemoteCall` row (never
holding credentials; the caller writes the rows)."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import httpx

from smbc.core.answers import AnswerError, AnswerModel, read_answer
from smbc.core.clock import get_clock
from smbc.core.http_clients import check_no_open_transaction, shared_client
from smbc.core.metrics import record_remote_call
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError, Service
from smbc.core.runtime import get_runtime
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
    required_fields,
)
from smbc.salesmanago.endpoints import (
    DEFAULT_ENTRIES,
    EndpointAllowlist,
    EndpointRefused,
    check_endpoint,
    guarded_http_client,
)
from smbc.salesmanago.payload import clean_payload

log = logging.getLogger(__name__)
A = TypeVar("A", bound=AnswerModel)

SERVICE = "salesmanago"
DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=10.0)
_MESSAGE_LIMIT = 1000

# SDK ExceptionCodeResolver: 101 bad credentials, 102 account (probably) inactive.
MSG_USER_NOT_AUTHENTICATED = "user not authenticated"
MSG_NOT_AUTHENTICATED = "not authenticated"


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


def configured_allowlist() -> EndpointAllowlist:
    """`SMBC_SM_ENDPOINT_HOSTS` of the process (the default before a runtime is set up)."""
    try:
        return EndpointAllowlist.parse(get_runtime().settings.sm_endpoint_hosts)
    except RuntimeError:
        return EndpointAllowlist.parse(DEFAULT_ENTRIES)


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
# The classification table: the ONLY place that decides what an answer means.
# ---------------------------------------------------------------------------------------------------


class UnexpectedAnswerError(RemoteCallError):
    """The host answered, but not like SALESmanago does (no JSON envelope): probably the wrong host."""


def _problems(body: dict[str, Any]) -> list[dict[str, Any]]:
    """v3 per-item problems; anything in that list that is not an object is not a problem we can read."""
    problems = body.get("problems")
    return [p for p in problems if isinstance(p, dict)] if isinstance(problems, list) else []


def _messages(body: dict[str, Any]) -> str:
    raw = body.get("message", body.get("messages"))
    if isinstance(raw, list):
        text = " ".join(str(m) for m in raw if m not in (None, ""))
    elif raw is None:
        text = ""
    else:
        text = str(raw)
    values = body.get("values")
    if isinstance(values, dict) and values:  # SDK validateCustomResponse appends the values map
        text = (text + " " + json.dumps(values, ensure_ascii=False, sort_keys=True)).strip()
    problems = _problems(body)
    if problems:
        text = (text + " " + "; ".join(str(p.get("message", p)) for p in problems)).strip()
    return text


def is_envelope(body: Any, api: str = "v2") -> bool:
    """Does the answer look like SALESmanago's? v2 always has a boolean `success`; v3 is a JSON object."""
    if not isinstance(body, dict):
        return False
    return api == "v3" or isinstance(body.get("success"), bool)


def _retry_after(response: httpx.Response) -> float | None:
    reset_ms = response.headers.get("x-rate-limit-time-reset-ms")
    if reset_ms and reset_ms.strip().isdigit():
        return int(reset_ms) / 1000.0
    after = response.headers.get("retry-after", "").strip()
    try:
        return max(0.0, float(after)) if after else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def classify(status: int, body: Any, expected: tuple[str, ...], *, api: str = "v2") -> tuple[Outcome, str]:
    """(outcome, message) for one HTTP answer. `body` is the parsed JSON or None when it was not JSON.

    | answer                                              | outcome      |
    |-----------------------------------------------------|--------------|
    | 429                                                 | RATE_LIMITED |
    | 401, 403                                            | CREDENTIALS  |
    | 5xx                                                 | RETRY        |
    | 3xx (redirects are never followed)                  | INVALID      |
    | message "User not authenticated"/"Not authenticated"| CREDENTIALS  |
    | v3 reasonCode 10 (bad API key)                      | CREDENTIALS  |
    | not a JSON object, 2xx                              | RETRY (a maintenance/proxy page) |
    | not a JSON object, other 4xx                        | INVALID      |
    | v2: success true AND every expected field present   | SUCCESS      |
    | v3: 2xx, no messages/problems, expected present     | SUCCESS      |
    | anything else (success false, field missing, 4xx)   | INVALID with SALESmanago's message |
    """
    message = _messages(body) if isinstance(body, dict) else ""
    lowered = message.lower()
    if status == 429:
        return Outcome.RATE_LIMITED, message or "SALESmanago rate limit reached"
    if status in (401, 403):
        return Outcome.CREDENTIALS, message or f"SALESmanago refused the credentials (HTTP {status})"
    if status >= 500:
        return Outcome.RETRY, message or f"SALESmanago answered HTTP {status}"
    if 300 <= status < 400:
        return Outcome.INVALID, f"HTTP {status}: a redirect, which this app does not follow"
    if MSG_NOT_AUTHENTICATED in lowered:  # also matches "user not authenticated"
        return Outcome.CREDENTIALS, message
    if not isinstance(body, dict):
        if 200 <= status < 400:
            return Outcome.RETRY, f"HTTP {status} without a SALESmanago JSON answer"
        return Outcome.INVALID, f"HTTP {status} without a SALESmanago JSON answer"
    if api == "v3":
        problems = _problems(body)
        if body.get("reasonCode") == 10 or any(p.get("reasonCode") == 10 for p in problems):
            return Outcome.CREDENTIALS, message or "SALESmanago API v3 key is not valid"
        # reasonCode 12 is only a warning (a field was trimmed).
        blocking = [p for p in problems if p.get("reasonCode") != 12]
        if 200 <= status < 300 and not blocking and not body.get("messages") and _has(body, expected):
            return Outcome.SUCCESS, message
        return Outcome.INVALID, message or f"SALESmanago API v3 answered HTTP {status}"
    if body.get("success") is True and 200 <= status < 300:
        if _has(body, expected):
            return Outcome.SUCCESS, message
        missing = ", ".join(f for f in expected if body.get(f) in (None, "", []))
        return Outcome.INVALID, (message + f" (answer without {missing})").strip()
    return Outcome.INVALID, message or f"SALESmanago refused the request (HTTP {status})"


def _has(body: dict[str, Any], expected: tuple[str, ...]) -> bool:
    return all(body.get(name) not in (None, "") for name in expected)


# ---------------------------------------------------------------------------------------------------
# Recording every attempt
# ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallAttempt:
    method: str
    endpoint: str  # path only
    attempt: int
    outcome: Outcome
    status: int | None
    duration_ms: int
    message: str
    context: str


Recorder = Callable[[CallAttempt], None]
# (status, parsed body or None, expected fields) -> (outcome, message): `classify`'s signature.
Classifier = Callable[[int, Any, tuple[str, ...]], tuple[Outcome, str]]


def attempt_fields(attempt: CallAttempt, store_id: int | None) -> dict[str, Any]:
    """The `RemoteCall` row fields of one attempt."""
    return {
        "store_id": store_id,
        "service": SERVICE,
        "method": attempt.method,
        "endpoint": attempt.endpoint[:255],
        "attempt": attempt.attempt,
        "outcome": str(attempt.outcome),
        "status": attempt.status,
        "duration_ms": attempt.duration_ms,
        "message": attempt.message[:_MESSAGE_LIMIT],
        "context": attempt.context[:64],
    }


def record_calls_into(calls: Callable[[dict[str, Any]], None], store_id: int | None) -> Recorder:
    """A recorder that hands each attempt's row fields to `calls` (a buffer written to the database
    later, in the same short transaction as the work's state), as the BigCommerce client does."""

    def record(attempt: CallAttempt) -> None:
        calls(attempt_fields(attempt, store_id))

    return record


@dataclass(frozen=True, kw_only=True)
class _Caller:
    """Sends one logical call: attempts, classification, backoff, records."""

    http: httpx.Client | None
    recorder: Recorder | None
    policy: BackoffPolicy
    context: str
    timeout: httpx.Timeout | float
    allowlist: EndpointAllowlist
    secrets_to_hide: tuple[str, ...] = ()

    def _scrub(self, text: str) -> str:
        for secret in filter(None, self.secrets_to_hide):
            text = text.replace(secret, "***")
        return text

    def post(
        self,
        base_url: str,
        path: str,
        body: dict[str, Any],
        expected: tuple[str, ...],
        *,
        api: str = "v2",
        headers: dict[str, str] | None = None,
        method: str = "POST",
        allowlist: EndpointAllowlist | None = None,
        classifier: Classifier | None = None,
        answer: type[AnswerModel] | None = None,
    ) -> Any:
        """The parsed answer of a successful call, read as `answer` when given (then a required field
        missing or mistyped is an `invalid` outcome, recorded on the attempt like any other)."""
        allowlist = allowlist or self.allowlist
        try:
            url = check_endpoint(base_url, allowlist) + path
        except EndpointRefused as refused:
            self._refused(method, path, refused)
        send_headers = {"Accept": "application/json", "Content-Type": "application/json;charset=UTF-8"}
        send_headers.update(headers or {})
        content = json.dumps(body, ensure_ascii=False).encode() if method == "POST" else None
        attempts = max(1, self.policy.attempts)
        clock = get_clock()
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            status: int | None = None
            retry_after: float | None = None
            parsed: Any = None
            unexpected = False
            never_sent = False
            try:
                response = self._send(method, url, content, send_headers, allowlist)
                status = response.status_code
                retry_after = _retry_after(response) if status in (429, 503) else None
                try:
                    parsed = response.json()
                except ValueError:
                    parsed = None
                unexpected = not is_envelope(parsed, api)
                if classifier is None:
                    outcome, message = classify(status, parsed, expected, api=api)
                else:  # a client module with answers of its own (the v3 catalog: problems per item)
                    outcome, message = classifier(status, parsed, expected)
                if outcome is Outcome.SUCCESS and answer is not None:
                    outcome, message, parsed = _read(answer, parsed, f"{method} {path}", message)
            except EndpointRefused as refused:  # the name resolved to an inside address: not connected
                self._refused(method, path, refused, attempt, started)
            except httpx.TimeoutException as exc:
                outcome, message = Outcome.RETRY, f"{urlsplit(url).netloc} did not answer in time"
                never_sent = isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout))
            except httpx.TransportError as exc:
                outcome, message = Outcome.RETRY, f"cannot reach {urlsplit(url).netloc}: {_reason(exc)}"
                never_sent = isinstance(exc, httpx.ConnectError)
            message = self._scrub(message)
            duration_ms = int((time.monotonic() - started) * 1000)
            self._record(
                CallAttempt(method, path, attempt, outcome, status, duration_ms, message, self.context)
            )
            if outcome is Outcome.SUCCESS:
                return parsed
            log.info("salesmanago %s %s attempt %d: %s %s", method, path, attempt, outcome, message)
            error_type = UnexpectedAnswerError if unexpected and status is not None else RemoteCallError
            error = error_type(
                outcome,
                message,
                service=Service.SALESMANAGO,
                status=status,
                retry_after=retry_after,
                never_sent=never_sent,
            )
            if not outcome.retryable or attempt == attempts:
                raise error
            wait = max(self.policy.delay(attempt), retry_after or 0.0)
            if wait > self.policy.cap:  # a long server-requested wait belongs to the job layer
                raise error
            clock.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def read(self, base_url: str, path: str, body: dict[str, Any], answer: type[A], **options: Any) -> A:
        """`post` with the answer read as `answer`: the fields it requires are the expected ones."""
        read: A = self.post(base_url, path, body, required_fields(answer), answer=answer, **options)
        return read

    def _send(
        self,
        method: str,
        url: str,
        content: bytes | None,
        headers: dict[str, str],
        allowlist: EndpointAllowlist,
    ) -> httpx.Response:
        check_no_open_transaction(SERVICE, method, url)
        # One client per allowlist: its transport checks every address it connects to against it.
        http = self.http or shared_client(
            f"{SERVICE} {allowlist.describe()}", lambda: guarded_http_client(allowlist)
        )
        return http.request(method, url, content=content, headers=headers, timeout=self.timeout)

    def _refused(
        self,
        method: str,
        path: str,
        refused: EndpointRefused,
        attempt: int = 1,
        started: float | None = None,
    ) -> NoReturn:
        """Record the refusal (nothing was sent) and raise it: never retried."""
        duration_ms = int((time.monotonic() - started) * 1000) if started is not None else 0
        self._record(
            CallAttempt(
                method, path, attempt, refused.outcome, None, duration_ms, refused.message, self.context
            )
        )
        log.warning("salesmanago %s %s refused: %s", method, path, refused.message)
        raise refused

    def _record(self, attempt: CallAttempt) -> None:
        record_remote_call(SERVICE, str(attempt.outcome), attempt.duration_ms)
        if self.recorder is None:
            return
        try:
            self.recorder(attempt)
        except Exception:  # a broken recorder must not turn a sent call into a failed one
            log.exception("could not record a SALESmanago call")


def _read(answer: type[AnswerModel], parsed: Any, call: str, message: str) -> tuple[Outcome, str, Any]:
    """A successful answer read as its model: (SUCCESS, message with any ignored field named, the
    model) or (INVALID, what is unreadable, the raw answer)."""
    notes: list[str] = []
    try:
        model = read_answer(answer, parsed, call=call, notes=notes)
    except AnswerError as exc:
        return Outcome.INVALID, str(exc), parsed
    return Outcome.SUCCESS, "; ".join(filter(None, [message, *notes])), model


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]


# ---------------------------------------------------------------------------------------------------
# The authenticated v2 client (contacts, events, owners) and v3 key management
# ---------------------------------------------------------------------------------------------------


class SalesmanagoClient:
    def __init__(
        self,
        credentials: SalesmanagoCredentials,
        *,
        http: httpx.Client | None = None,
        recorder: Recorder | None = None,
        policy: BackoffPolicy | None = None,
        context: str = "",
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        allowlist: EndpointAllowlist | None = None,
    ) -> None:
        self.credentials = credentials
        self._caller = _Caller(
            http=http,
            recorder=recorder,
            policy=policy or BackoffPolicy(),
            context=context,
            timeout=timeout,
            allowlist=allowlist or configured_allowlist(),
            secrets_to_hide=(credentials.api_key, credentials.sha),
        )

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

    def call(self, path: str, payload: dict[str, Any], answer: type[A]) -> A:
        """POST a v2 method: payload cleaned, auth block added (payload keys never override it), the
        answer read as `answer` (exactly the fields the product uses)."""
        body = clean_payload(payload)
        body.update(self.auth_block())
        return self._caller.read(self.credentials.endpoint, path, body, answer)

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
        answer = self.call("/api/integration/upsert", body, ContactAndEventUpserted)
        return answer.contactId, answer.eventId

    def batch_upsert(self, upserts: list[dict[str, Any]]) -> BatchAccepted:
        """Asynchronous: SALESmanago accepts the batch and applies it later, so a contact in it may
        not exist yet when this returns, and the answer carries no contact ids."""
        owner = self.credentials.owner
        details = [{"owner": owner, **item} for item in upserts]
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
        return self.call("/api/v2/contact/addContactExtEvent", body, EventSaved).eventId

    def update_event(self, event: dict[str, Any]) -> str:
        return self.call("/api/v2/contact/updateContactExtEvent", event, EventSaved).eventId

    def add_batch_events(self, events: list[dict[str, Any]]) -> BatchEventsAdded:
        """`success` even when some events failed: the answer's failedContacts/failedAmount say which."""
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


class SalesmanagoAccountApi:
    """The calls made before there are v2 credentials (login) and the v3 key management."""

    def __init__(
        self,
        *,
        v3_url: str = "https://api.salesmanago.com",
        http: httpx.Client | None = None,
        recorder: Recorder | None = None,
        policy: BackoffPolicy | None = None,
        context: str = "login",
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        secrets_to_hide: tuple[str, ...] = (),
        allowlist: EndpointAllowlist | None = None,
    ) -> None:
        self.v3_url = v3_url.rstrip("/")
        # The v3 URL is the operator's setting, not an endpoint anyone types: it is allowed as an origin.
        self._v3_allowlist = (allowlist or configured_allowlist()).with_origin(self.v3_url)
        self._caller = _Caller(
            http=http,
            recorder=recorder,
            policy=policy or BackoffPolicy(attempts=2, base=0.3),
            context=context,
            timeout=timeout,
            allowlist=allowlist or configured_allowlist(),
            secrets_to_hide=secrets_to_hide,
        )

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
