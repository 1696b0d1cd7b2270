"""THE BigCommerce REST client: one classification table, a per-store limiter (paging: `paging`).

Every area that talks to BigCommerce (set-up, webhooks, real time, reconciliation, export, consent
write-back, monitoring scripts) goes through `BigCommerceClient`. Each attempt is handed to the
`recorder` (a `RemoteCall` row in the end), and the per-store limiter keeps every thread (and, with
Redis, every worker process) within 3 requests in flight and the store's quota.

Every answer a typed method returns is read through its model (`bigcommerce.answers`): a required
field missing or wrongly typed is an `invalid` outcome recorded on the call; an ignored
opportunistic field is named in the call's recorded message.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

import httpx

from smbc.bigcommerce.answers import (
    Cart,
    Customer,
    Hook,
    Order,
    OrderCount,
    OrderProduct,
    OrderStatus,
    Refund,
    Script,
    ServerTime,
    StoreInfo,
    Subscriber,
    V3List,
    V3One,
    as_dict,
    list_item_model,
)

# Re-exported: every feature that records calls imports the buffer beside the client it records.
from smbc.bigcommerce.call_buffer import CallBuffer as CallBuffer
from smbc.bigcommerce.limiter import QuotaUsedUp, StoreLimiter, get_limiter
from smbc.bigcommerce.paging import PAGE_LIMIT, V2Pages, V3Pages, plain_dicts
from smbc.core.answers import AnswerError, AnswerModel, Declared, decode_json, read_answer
from smbc.core.clock import Clock, UsesClock
from smbc.core.http_clients import check_no_open_transaction, shared_client
from smbc.core.metrics import record_remote_call
from smbc.core.remote_calls import BackoffPolicy, CallPostponed, Outcome, RemoteCallError, Service
from smbc.core.runtime import get_runtime

Priority = Literal["realtime", "export"]
Recorder = Callable[[dict[str, Any]], None]

SERVICE = "bigcommerce"
DEFAULT_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
# 429 without rate-limit headers means platform overload for the store: back off at least this long.
DEFAULT_RATE_LIMIT_WAIT_S = 5.0
# Longer waits than this are not slept inside a call; the caller reschedules the work instead.
MAX_IN_CALL_WAIT_S = 30.0
USER_AGENT = "smbc/0.1 (SALESmanago for BigCommerce)"

# ONE table: HTTP status -> outcome. First matching row wins; network errors and timeouts are RETRY.
STATUS_OUTCOMES: tuple[tuple[range, Outcome], ...] = (
    (range(200, 300), Outcome.SUCCESS),
    (range(401, 402), Outcome.CREDENTIALS),
    (range(403, 404), Outcome.CREDENTIALS),
    (range(404, 405), Outcome.IGNORED),
    (range(408, 409), Outcome.RETRY),
    (range(429, 430), Outcome.RATE_LIMITED),
    (range(500, 600), Outcome.RETRY),
    (range(400, 500), Outcome.INVALID),
)


def classify_status(status: int) -> Outcome:
    for statuses, outcome in STATUS_OUTCOMES:
        if status in statuses:
            return outcome
    return Outcome.INVALID  # 1xx/3xx: nothing we asked for


def _header_float(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def rate_limit_wait(headers: Mapping[str, str]) -> float:
    """Seconds to wait after a 429: the reset header, else X-Retry-After, else a default."""
    reset_ms = _header_float(headers, "x-rate-limit-time-reset-ms")
    if reset_ms is not None:
        return max(reset_ms / 1000.0, 0.0)
    retry_after = _header_float(headers, "x-retry-after")
    if retry_after is not None:
        return max(retry_after, 0.0)
    return DEFAULT_RATE_LIMIT_WAIT_S


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        parts = [str(body.get(k)) for k in ("title", "detail", "message") if body.get(k)]
        errors = body.get("errors")
        if isinstance(errors, dict) and errors:
            parts.append("; ".join(f"{k}: {v}" for k, v in errors.items()))
        return " ".join(parts)[:500] or response.reason_phrase
    if isinstance(body, list) and body and isinstance(body[0], dict):  # v2 errors: [{status, message}]
        return "; ".join(str(item.get("message", "")) for item in body if isinstance(item, dict))[:500]
    return response.reason_phrase


@dataclass
class Response:
    status: int
    data: Any  # parsed JSON body (read as the call's answer model when one is given), or None for 204 / 404
    headers: Mapping[str, str]


# `data` of an attempt whose answer could not be read (its message already names the call).
_UNREADABLE = object()


def _read_body(response: httpx.Response, answer: Any, call: str) -> tuple[Outcome, str, Any]:
    """(outcome, message, data) of a successful response: its JSON, read as `answer` when given.

    Ignored opportunistic fields go in the message, so the recorded call shows them."""
    if response.status_code == 204 or not response.content:
        return Outcome.SUCCESS, "", None
    try:
        # `Declared` decodes and checks the body's bytes in one pass.
        body = response.content if isinstance(answer, Declared) else decode_json(response.content)
    except ValueError:
        if answer is None:
            return Outcome.SUCCESS, "", None
        return Outcome.INVALID, f"BigCommerce {call}: unreadable answer: not JSON", _UNREADABLE
    if answer is None:
        return Outcome.SUCCESS, "", body
    notes: list[str] = []
    try:
        data = read_answer(answer, body, call=f"BigCommerce {call}", notes=notes)
    except AnswerError as error:
        return Outcome.INVALID, str(error), _UNREADABLE
    return Outcome.SUCCESS, "; ".join(notes), data


def _csv(values: Sequence[object]) -> str:
    return ",".join(str(v) for v in values)


class BigCommerceClient(UsesClock):
    """One store's REST API. Thread-safe as long as `http` is (httpx.Client is)."""

    def __init__(
        self,
        store_hash: str,
        access_token: str,
        base_url: str,
        http: httpx.Client | None = None,
        recorder: Recorder | None = None,
        policy: BackoffPolicy | None = None,
        limiter: StoreLimiter | None = None,
        *,
        priority: Priority = "realtime",
        clock: Clock | None = None,
        store_id: int | None = None,
        context: str = "",
        max_quota_wait: float | None = None,
    ) -> None:
        self.store_hash = store_hash
        # Every request's headers, built once; those an httpx.Client adds by default too, so the
        # request is the same as one the client would have built.
        self._headers = {
            "Accept-Encoding": "gzip, deflate",
            "Connection": "keep-alive",
            "X-Auth-Token": access_token,
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        self.base = f"{base_url.rstrip('/')}/stores/{store_hash}"
        self._http = http or httpx.Client(timeout=DEFAULT_TIMEOUT)
        self._owns_http = http is None
        # Parsed once: a request copies these instead of validating the same headers again.
        self._built_headers = httpx.Headers(self._headers)
        self._timeout = {"timeout": self._http.timeout.as_dict()}
        self.recorder = recorder
        self.policy = policy or BackoffPolicy()
        self.limiter = limiter or get_limiter()
        self.priority: Priority = priority
        self._clock = clock
        self.store_id = store_id
        self.context = context
        # None: wait for the store's quota however long it takes; else longer waits raise CallPostponed.
        self.max_quota_wait = max_quota_wait

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # -- transport -------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        *,
        answer: Any = None,
    ) -> Response:
        """Send with retries; returns on SUCCESS or IGNORED (404, data None), raises otherwise.

        With `answer` (an answer model, or e.g. `list[Model]`) the body is read through it: an
        unreadable answer is an `invalid` outcome, recorded on the call and raised."""
        attempt = 0
        while True:
            attempt += 1
            try:
                outcome, response, message, data = self._attempt(method, path, params, json, attempt, answer)
            except QuotaUsedUp as exc:
                raise CallPostponed(
                    f"BigCommerce {method} {path}: not sent, {exc}",
                    service=Service.BIGCOMMERCE,
                    retry_after=exc.wait_s,
                ) from None
            if outcome is Outcome.SUCCESS and response is not None:
                return Response(response.status_code, data, response.headers)
            if outcome is Outcome.IGNORED and response is not None:
                return Response(response.status_code, None, response.headers)
            status = response.status_code if response is not None else None
            wait = None
            if outcome is Outcome.RATE_LIMITED and response is not None:
                wait = rate_limit_wait(response.headers)
            if data is not _UNREADABLE:  # an unreadable answer's message already names the call
                message = f"BigCommerce {method} {path}: {message}"
            error = RemoteCallError(
                outcome,
                message,
                service=Service.BIGCOMMERCE,
                status=status,
                retry_after=wait,
            )
            if not outcome.retryable or attempt >= self.policy.attempts:
                raise error
            delay = wait if wait is not None else self.policy.delay(attempt)
            if delay > MAX_IN_CALL_WAIT_S:
                raise error
            self.clock.sleep(delay)

    def _attempt(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        json: Any,
        attempt: int,
        answer: Any,
    ) -> tuple[Outcome, httpx.Response | None, str, Any]:
        response: httpx.Response | None = None
        data: Any = None
        check_no_open_transaction(SERVICE, method, path)
        started = _time.perf_counter()
        with self.limiter.slot(self.store_hash, self.priority, max_wait=self.max_quota_wait):
            try:
                # Built here and sent as is: the client's merging of its URL, headers, cookies and
                # parameters into every request cost more than the request itself.
                request = httpx.Request(
                    method,
                    self.base + path,
                    params=params or None,
                    json=json,
                    headers=self._built_headers,
                    extensions=self._timeout,
                )
                response = self._send(request)
            except httpx.TimeoutException as exc:
                outcome, message = Outcome.RETRY, f"timeout ({type(exc).__name__})"
            except httpx.HTTPError as exc:
                outcome, message = Outcome.RETRY, f"network error ({type(exc).__name__})"
            else:
                outcome = classify_status(response.status_code)
                message = "" if outcome is Outcome.SUCCESS else _error_message(response)
                limited = response.status_code == 429
                self.limiter.observe(self.store_hash, response.headers, rate_limited=limited)
        duration_ms = int((_time.perf_counter() - started) * 1000)
        if outcome is Outcome.SUCCESS and response is not None:
            outcome, message, data = _read_body(response, answer, f"{method} {path}")
        record_remote_call(SERVICE, outcome.value, duration_ms)
        if self.recorder is not None:
            self.recorder(
                {
                    "store_id": self.store_id,
                    "service": SERVICE,
                    "method": method,
                    "endpoint": path,  # path only: no query string, no token
                    "attempt": attempt,
                    "outcome": outcome.value,
                    "status": response.status_code if response is not None else None,
                    "duration_ms": duration_ms,
                    "message": message[:1000],
                    "context": self.context,
                }
            )
        return outcome, response, message, data

    def _send(self, request: httpx.Request) -> httpx.Response:
        """`http.send(request)`, read to its end. For a client with no auth, no event hooks and no
        redirects followed, its transport is called directly: the client's auth and redirect steps
        would pass the request through unchanged and cost a sixth of a call."""
        http = self._http
        if not _sends_as_built(http):
            return http.send(request)
        if http.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        response = http._transport_for_url(request.url).handle_request(request)
        response.request = request
        try:
            if "set-cookie" in response.headers:  # the client keeps what its cookie policy accepts
                http.cookies.extract_cookies(response)
            response.read()
        except BaseException:
            response.close()
            raise
        return response

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """The raw JSON of a GET (None for 204 / 404), for tests and diagnostics: product code reads
        only through the typed methods, whose answers are checked."""
        return self.request("GET", path, params).data

    def _read(self, path: str, answer: Any, params: Mapping[str, Any] | None = None) -> Any:
        """GET `path` read as `answer`; None for 204 / 404."""
        return self.request("GET", path, params, answer=answer).data

    def _one(
        self, path: str, item: type[AnswerModel], params: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        """A `/v3` single object (`{"data": {...}}`) as a dict; None when it is gone (404)."""
        body = self._read(path, V3One[item], params)  # type: ignore[valid-type]
        return None if body is None else as_dict(body.data)

    # -- store -----------------------------------------------------------------------------

    def store_info(self) -> dict[str, Any]:
        info = self._read("/v2/store", StoreInfo)
        return {} if info is None else as_dict(info)

    def time(self) -> int:
        answer = self._read("/v2/time", ServerTime)
        return 0 if answer is None else answer.time

    def channels(self) -> list[dict[str, Any]]:
        return list(V3Pages(self, "/v3/channels").items())

    def sites(self) -> list[dict[str, Any]]:
        return list(V3Pages(self, "/v3/sites").items())

    # -- customers -------------------------------------------------------------------------

    CUSTOMER_INCLUDE = "addresses"

    def customer(self, customer_id: int) -> dict[str, Any] | None:
        found = self.customers_by_id([customer_id])
        return found.get(int(customer_id))

    def customers_by_id(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """One `id:in` read for many customers (with addresses); missing ids are absent."""
        params = {"include": self.CUSTOMER_INCLUDE}
        return self._by_id("/v3/customers", Customer, ids, params)

    def _by_id(
        self, path: str, item: type[AnswerModel], ids: Sequence[int], params: Mapping[str, Any]
    ) -> dict[int, dict[str, Any]]:
        result: dict[int, dict[str, Any]] = {}
        unique = sorted({int(i) for i in ids})
        for start in range(0, len(unique), PAGE_LIMIT):
            chunk = unique[start : start + PAGE_LIMIT]
            query = {**params, "id:in": _csv(chunk), "limit": PAGE_LIMIT}
            body = self._read(path, V3List[item], query)  # type: ignore[valid-type]
            for found in body.data if body is not None else []:
                result[int(found.id)] = as_dict(found)
        return result

    def customers(self, **filters: Any) -> V3Pages:
        """Pages of customers; filters as the API names them, e.g. `**{"date_modified:min": "..."}`."""
        params = {"include": self.CUSTOMER_INCLUDE, **filters}
        return V3Pages(self, "/v3/customers", params)

    def customer_count(self, **filters: Any) -> int | None:
        """How many customers match (`meta.pagination.total`); None when the answer does not say."""
        return self._total("/v3/customers", filters)

    def _total(self, path: str, filters: Mapping[str, Any]) -> int | None:
        body = self._read(path, V3List[list_item_model(path)], {**filters, "limit": 1, "page": 1})
        pagination = body.meta.pagination if body is not None and body.meta is not None else None
        return None if pagination is None else pagination.total

    # -- subscribers -----------------------------------------------------------------------

    def subscriber(self, subscriber_id: int) -> dict[str, Any] | None:
        return self.subscribers_by_id([subscriber_id]).get(int(subscriber_id))

    def subscribers_by_id(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        return self._by_id("/v3/customers/subscribers", Subscriber, ids, {})

    def subscribers(self, **filters: Any) -> V3Pages:
        return V3Pages(self, "/v3/customers/subscribers", dict(filters))

    def subscriber_count(self, **filters: Any) -> int | None:
        return self._total("/v3/customers/subscribers", filters)

    def create_subscriber(self, subscriber: Mapping[str, Any]) -> dict[str, Any]:
        return self._create(_Writable("/v3/customers/subscribers", Subscriber), subscriber)

    def update_subscriber(self, subscriber_id: int, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        return self._write("PUT", f"/v3/customers/subscribers/{int(subscriber_id)}", Subscriber, fields)

    def set_subscriber_consents(self, subscriber_id: int, consents: Sequence[str]) -> dict[str, Any] | None:
        return self.update_subscriber(subscriber_id, {"consents": list(consents)})

    # -- orders ----------------------------------------------------------------------------

    ORDER_INCLUDE: ClassVar[dict[str, str]] = {
        "include": "consignments.line_items",
        "consignment_structure": "object",
    }

    def order(self, order_id: int) -> dict[str, Any] | None:
        """The order with its line items in the same call (consignments.line_items)."""
        order = self._read(f"/v2/orders/{int(order_id)}", Order, self.ORDER_INCLUDE)
        return None if order is None else as_dict(order)

    def orders(self, **filters: Any) -> V2Pages:
        """Orders by id ascending (`min_id` keyset), line items included."""
        return V2Pages(self, "/v2/orders", {**self.ORDER_INCLUDE, **filters})

    def order_count(self, **filters: Any) -> int | None:
        """`/v2/orders/count` (None when the answer has no count)."""
        answer = self._read("/v2/orders/count", OrderCount, filters)
        return None if answer is None else answer.count

    def order_products(self, order_id: int) -> list[dict[str, Any]]:
        products: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"page": page, "limit": PAGE_LIMIT}
            batch = self._read(f"/v2/orders/{int(order_id)}/products", list[OrderProduct], params)
            if not batch:
                return products
            products.extend(plain_dicts(batch))
            if len(batch) < PAGE_LIMIT:
                return products
            page += 1

    def order_statuses(self) -> list[dict[str, Any]]:
        return plain_dicts(self._read("/v2/order_statuses", list[OrderStatus]) or [])

    def refund(self, refund_id: int) -> dict[str, Any] | None:
        return self._one(f"/v3/orders/payment_actions/refunds/{int(refund_id)}", Refund)

    def refunds(
        self,
        order_ids: Sequence[int] = (),
        refund_ids: Sequence[int] = (),
        created_since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The store's refunds (250 a page), of these orders, with these ids, created since then."""
        params: dict[str, Any] = {}
        if order_ids:
            params["order_id:in"] = _csv(sorted(set(order_ids)))
        if refund_ids:
            params["id:in"] = _csv(sorted(set(refund_ids)))
        if created_since is not None:
            params["created:min"] = created_since.isoformat()
        return list(V3Pages(self, "/v3/orders/payment_actions/refunds", params).items())

    # -- carts -----------------------------------------------------------------------------

    def cart(self, cart_id: str) -> dict[str, Any] | None:
        return self._one(f"/v3/carts/{cart_id}", Cart, {"include": "redirect_urls"})

    # -- hooks and scripts: one way to list, create, update and delete each ----------------

    def _write(
        self, method: str, path: str, item: type[AnswerModel], body: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """POST or PUT `body`; the object BigCommerce answers with (its `data`), None on 404."""
        answer = self.request(method, path, json=dict(body), answer=V3One[item]).data  # type: ignore[valid-type]
        return None if answer is None else as_dict(answer.data)

    def _create(self, kind: _Writable, body: Mapping[str, Any]) -> dict[str, Any]:
        """The object made; a 404 (the collection is not there) made nothing, which no caller can use."""
        created = self._write("POST", kind.path, kind.item, body)
        if created is None:
            message = f"BigCommerce POST {kind.path}: answered 404, nothing was created"
            raise RemoteCallError(Outcome.INVALID, message, service=Service.BIGCOMMERCE, status=404)
        return created

    def _update(self, kind: _Writable, key: int | str, fields: Mapping[str, Any]) -> dict[str, Any]:
        return self._write("PUT", f"{kind.path}/{key}", kind.item, fields) or {}

    def _delete(self, kind: _Writable, key: int | str) -> None:
        self.request("DELETE", f"{kind.path}/{key}")

    def hooks(self) -> list[dict[str, Any]]:
        return list(V3Pages(self, HOOKS.path).items())

    def create_hook(self, hook: Mapping[str, Any]) -> dict[str, Any]:
        return self._create(HOOKS, hook)

    def update_hook(self, hook_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        return self._update(HOOKS, int(hook_id), fields)

    def delete_hook(self, hook_id: int) -> None:
        self._delete(HOOKS, int(hook_id))

    def scripts(self, **filters: Any) -> list[dict[str, Any]]:
        return list(V3Pages(self, SCRIPTS.path, dict(filters)).items())

    def create_script(self, script: Mapping[str, Any]) -> dict[str, Any]:
        return self._create(SCRIPTS, script)

    def update_script(self, uuid: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        return self._update(SCRIPTS, uuid, fields)

    def delete_script(self, uuid: str) -> None:
        self._delete(SCRIPTS, uuid)


@dataclass(frozen=True)
class _Writable:
    """A `/v3` collection the app writes to: where it is and what one of its objects is."""

    path: str
    item: type[AnswerModel]


HOOKS = _Writable("/v3/hooks", Hook)
SCRIPTS = _Writable("/v3/content/scripts", Script)


def _sends_as_built(http: httpx.Client) -> bool:
    """Whether `http.send` would send a built request unchanged: no auth, no hooks, no redirects."""
    hooks = http.event_hooks
    plain = type(http) is httpx.Client and http.auth is None and not http.follow_redirects
    return plain and not hooks["request"] and not hooks["response"]


def for_store(
    store: Any,
    *,
    recorder: Recorder | None = None,
    priority: Priority = "realtime",
    context: str = "",
    http: httpx.Client | None = None,
    base_url: str | None = None,
    max_quota_wait: float | None = None,
) -> BigCommerceClient:
    """A client for an installed `Store` row, with the process-wide limiter and settings."""
    if not store.access_token:
        raise RemoteCallError(
            Outcome.CREDENTIALS,
            f"store {store.hash} has no BigCommerce access token",
            service=Service.BIGCOMMERCE,
        )
    if base_url is None:
        base_url = get_runtime().settings.bc_api_url
    return BigCommerceClient(
        store.hash,
        store.access_token,
        base_url,
        http=http or shared_http(),
        recorder=recorder,
        priority=priority,
        store_id=store.id,
        context=context,
        max_quota_wait=max_quota_wait,
    )


def shared_http() -> httpx.Client:
    """One connection pool for the process (keep-alive to api.bigcommerce.com)."""
    return shared_client(
        SERVICE,
        lambda: httpx.Client(
            timeout=DEFAULT_TIMEOUT, limits=httpx.Limits(max_connections=100, max_keepalive_connections=40)
        ),
    )
