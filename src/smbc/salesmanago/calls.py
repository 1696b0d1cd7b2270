"""Sending one logical SALESmanago call: the endpoint check, attempts with backoff, the answer's
outcome, and a record of every attempt for a `RemoteCall` row (never holding credentials)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, NoReturn, TypedDict, TypeVar
from urllib.parse import urlsplit

import httpx
import msgspec

from smbc.core.answers import AnswerError, AnswerModel, read_answer
from smbc.core.clock import get_clock
from smbc.core.http_clients import check_no_open_transaction, shared_client
from smbc.core.metrics import record_remote_call
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError, Service
from smbc.core.runtime import get_runtime
from smbc.salesmanago.answers import required_fields
from smbc.salesmanago.classification import UnexpectedAnswerError, classify, is_envelope, retry_after
from smbc.salesmanago.endpoints import (
    DEFAULT_ENTRIES,
    EndpointAllowlist,
    EndpointRefused,
    GuardedClient,
    check_endpoint,
    guarded_http_client,
)

log = logging.getLogger(__name__)
A = TypeVar("A", bound=AnswerModel)

SERVICE = "salesmanago"
DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=10.0)
_MESSAGE_LIMIT = 1000


def configured_allowlist() -> EndpointAllowlist:
    """`SMBC_SM_ENDPOINT_HOSTS` of the process (the default before a runtime is set up)."""
    try:
        return EndpointAllowlist.parse(get_runtime().settings.sm_endpoint_hosts)
    except RuntimeError:
        return EndpointAllowlist.parse(DEFAULT_ENTRIES)


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


# The origin `check_endpoint` allows, per URL and allowlist (both immutable); a refusal is raised
# again each time (lru_cache keeps no exception).
_checked_origin = lru_cache(maxsize=256)(check_endpoint)

# How many request URLs a caller keeps parsed (an account's endpoint times the methods it calls).
_URLS_KEPT = 64


@dataclass(frozen=True, kw_only=True)
class Caller:
    """Sends one logical call: attempts, classification, backoff, records."""

    http: httpx.Client | None
    recorder: Recorder | None
    policy: BackoffPolicy
    context: str
    timeout: httpx.Timeout | float
    allowlist: EndpointAllowlist
    secrets_to_hide: tuple[str, ...] = ()
    # What every request of this caller shares, built once: parsed URLs, and the headers merged
    # with each client's own (`_send`).
    _urls: dict[str, httpx.URL] = field(default_factory=dict, init=False, repr=False, compare=False)
    _headers: dict[tuple[httpx.Client, tuple[tuple[str, str], ...]], httpx.Headers] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @cached_property
    def _timeout(self) -> dict[str, float | None]:
        return httpx.Timeout(self.timeout).as_dict()

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
        once: bool = False,
    ) -> Any:
        """The parsed answer of a successful call, read as `answer` when given (then a required field
        missing or mistyped is an `invalid` outcome, recorded on the attempt like any other).

        `once`: a call that creates something (an event) is not sent again after an attempt whose
        answer never came (it may have arrived): the caller decides, knowing what a duplicate costs."""
        allowlist = allowlist or self.allowlist
        try:
            url = _checked_origin(base_url, allowlist) + path
        except EndpointRefused as refused:
            self._refused(method, path, refused)
        send_headers = {"Accept": "application/json", "Content-Type": "application/json;charset=UTF-8"}
        send_headers.update(headers or {})
        # msgspec: a 400-event batch encoded in C, several times faster than json.dumps.
        content = msgspec.json.encode(body) if method == "POST" else None
        attempts = max(1, self.policy.attempts)
        clock = get_clock()
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            status: int | None = None
            wait_asked: float | None = None
            parsed: Any = None
            unexpected = False
            never_sent = False
            try:
                response = self._send(method, url, content, send_headers, allowlist)
                status = response.status_code
                wait_asked = retry_after(response) if status in (429, 503) else None
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
                retry_after=wait_asked,
                never_sent=never_sent,
            )
            if not outcome.retryable or attempt == attempts or (once and error.may_have_arrived):
                raise error
            wait = max(self.policy.delay(attempt), wait_asked or 0.0)
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
        if http.params or len(http.cookies.jar):  # what only the client's own merging sends
            return http.request(method, url, content=content, headers=headers, timeout=self.timeout)
        # The request the client would build (its headers under ours, our timeout), from parts kept
        # between calls: the client's merging of URL and headers cost a fifth of a call.
        request = httpx.Request(
            method,
            self._url(url),
            content=content,
            headers=self._merged_headers(http, headers),
            extensions={"timeout": self._timeout},
        )
        if isinstance(http, GuardedClient) and not http.follow_redirects:
            return http.send_built(request)
        return http.send(request)

    def _url(self, url: str) -> httpx.URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    def _merged_headers(self, http: httpx.Client, headers: dict[str, str]) -> httpx.Headers:
        key = (http, tuple(headers.items()))
        merged = self._headers.get(key)
        if merged is None:
            if len(self._headers) >= _URLS_KEPT:
                self._headers.clear()
            merged = httpx.Headers(http.headers)
            merged.update(headers)
            self._headers[key] = merged
        return merged

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


class TransportOptions(TypedDict, total=False):
    """How a SALESmanago API class sends and records its calls; each takes these as keywords."""

    http: httpx.Client | None  # None: the process's pool for the allowlist
    recorder: Recorder | None
    policy: BackoffPolicy | None  # None: the class's own default
    context: str
    timeout: httpx.Timeout | float
    allowlist: EndpointAllowlist | None  # None: SMBC_SM_ENDPOINT_HOSTS


def build_caller(
    options: TransportOptions,
    *,
    secrets_to_hide: tuple[str, ...],
    default_policy: BackoffPolicy | None = None,
    default_context: str = "",
    origin: str | None = None,
) -> Caller:
    """The caller an API class sends through; `origin` is a URL allowed besides the allowlist."""
    allowlist = options.get("allowlist") or configured_allowlist()
    return Caller(
        http=options.get("http"),
        recorder=options.get("recorder"),
        policy=options.get("policy") or default_policy or BackoffPolicy(),
        context=options.get("context", default_context),
        timeout=options.get("timeout", DEFAULT_TIMEOUT),
        allowlist=allowlist.with_origin(origin) if origin else allowlist,
        secrets_to_hide=secrets_to_hide,
    )
