"""THE BigCommerce REST client: one classification table, pagination objects, a per-store limiter.

Every area that talks to BigCommerce (set-up, webhooks, real time, reconciliation, export, consent
write-back, monitoring scripts) goes through `BigCommerceClient`. Each attempt is handed to the
`recorder` (a `RemoteCall` row in the end), and the per-store limiter keeps every thread (and, with
Redis, every worker process) within 3 requests in flight and the store's quota.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx

from smbc.bigcommerce.limiter import StoreLimiter, get_limiter
from smbc.core.clock import Clock, UsesClock
from smbc.core.http_clients import check_no_open_transaction, shared_client
from smbc.core.metrics import record_remote_call
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError, Service, record_call
from smbc.core.runtime import get_runtime

Priority = Literal["realtime", "export"]
Recorder = Callable[[dict[str, Any]], None]

SERVICE = "bigcommerce"
PAGE_LIMIT = 250
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
        return "; ".join(str(item.get("message", "")) for item in body)[:500]
    return response.reason_phrase


@dataclass
class Response:
    status: int
    data: Any  # parsed JSON body, or None for 204 / 404
    headers: Mapping[str, str]


@dataclass
class V2Pages:
    """`/v2` lists moving on by `min_id` (keyset, sort id:asc); 204 or a short page ends them.

    `cursor` is the last id seen, so an export can save it and resume with `min_id=cursor+1`."""

    client: BigCommerceClient
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    limit: int = PAGE_LIMIT
    cursor: int | None = None

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        while True:
            params = {**self.params, "limit": self.limit, "sort": "id:asc"}
            if self.cursor is not None:
                params["min_id"] = self.cursor + 1
            page = self.client.get(self.path, params) or []
            if not page:
                return
            self.cursor = max(int(item["id"]) for item in page)
            yield page
            if len(page) < self.limit:
                return

    def items(self) -> Iterator[dict[str, Any]]:
        for page in self:
            yield from page


@dataclass
class V3Pages:
    """`/v3` lists: cursor pagination (`after`) when the answer offers it, else page numbers.

    `cursor` holds the next `after` value (or page number) so a caller can save and resume."""

    client: BigCommerceClient
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    limit: int = PAGE_LIMIT
    cursor: str | None = None
    page: int = 1

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        while True:
            params = {**self.params, "limit": self.limit}
            if self.cursor is not None:
                params["after"] = self.cursor
            else:
                params["page"] = self.page
            body = self.client.get(self.path, params) or {}
            data = body.get("data") or []
            meta = body.get("meta") or {}
            if data:
                yield data
            cursor_meta = meta.get("cursor_pagination") or {}
            next_cursor = cursor_meta.get("end_cursor")
            has_next_link = bool((cursor_meta.get("links") or {}).get("next"))
            if cursor_meta and next_cursor and has_next_link and len(data) > 0:
                self.cursor = str(next_cursor)
                continue
            pagination = meta.get("pagination") or {}
            current = int(pagination.get("current_page") or self.page)
            total = int(pagination.get("total_pages") or 0)
            if self.cursor is None and data and current < total:
                self.page = current + 1
                continue
            return

    def items(self) -> Iterator[dict[str, Any]]:
        for page in self:
            yield from page


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
    ) -> None:
        self.store_hash = store_hash
        self._token = access_token
        self.base = f"{base_url.rstrip('/')}/stores/{store_hash}"
        self._http = http or httpx.Client(timeout=DEFAULT_TIMEOUT)
        self._owns_http = http is None
        self.recorder = recorder
        self.policy = policy or BackoffPolicy()
        self.limiter = limiter or get_limiter()
        self.priority: Priority = priority
        self._clock = clock
        self.store_id = store_id
        self.context = context

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
    ) -> Response:
        """Send with retries; returns on SUCCESS or IGNORED (404, data None), raises otherwise."""
        attempt = 0
        while True:
            attempt += 1
            outcome, response, message = self._attempt(method, path, params, json, attempt)
            if outcome is Outcome.SUCCESS and response is not None:
                data = None
                if response.status_code != 204 and response.content:
                    try:
                        data = response.json()
                    except ValueError:
                        data = None
                return Response(response.status_code, data, response.headers)
            if outcome is Outcome.IGNORED and response is not None:
                return Response(response.status_code, None, response.headers)
            status = response.status_code if response is not None else None
            wait = None
            if outcome is Outcome.RATE_LIMITED and response is not None:
                wait = rate_limit_wait(response.headers)
            error = RemoteCallError(
                outcome,
                f"BigCommerce {method} {path}: {message}",
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
        self, method: str, path: str, params: Mapping[str, Any] | None, json: Any, attempt: int
    ) -> tuple[Outcome, httpx.Response | None, str]:
        headers = {
            "X-Auth-Token": self._token,
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        response: httpx.Response | None = None
        check_no_open_transaction(SERVICE, method, path)
        started = _time.perf_counter()
        with self.limiter.slot(self.store_hash, self.priority):
            try:
                response = self._http.request(
                    method, self.base + path, params=dict(params or {}), json=json, headers=headers
                )
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
        return outcome, response, message

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.request("GET", path, params).data

    def _data(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        body = self.get(path, params)
        return None if body is None else body.get("data")

    # -- store -----------------------------------------------------------------------------

    def store_info(self) -> dict[str, Any]:
        return self.get("/v2/store") or {}

    def time(self) -> int:
        return int((self.get("/v2/time") or {}).get("time", 0))

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
        result: dict[int, dict[str, Any]] = {}
        unique = sorted({int(i) for i in ids})
        for start in range(0, len(unique), PAGE_LIMIT):
            chunk = unique[start : start + PAGE_LIMIT]
            params = {"id:in": _csv(chunk), "include": self.CUSTOMER_INCLUDE, "limit": PAGE_LIMIT}
            for item in self._data("/v3/customers", params) or []:
                result[int(item["id"])] = item
        return result

    def customers(self, **filters: Any) -> V3Pages:
        """Pages of customers; filters as the API names them, e.g. `**{"date_modified:min": "..."}`."""
        params = {"include": self.CUSTOMER_INCLUDE, **filters}
        return V3Pages(self, "/v3/customers", params)

    # -- subscribers -----------------------------------------------------------------------

    def subscriber(self, subscriber_id: int) -> dict[str, Any] | None:
        return self.subscribers_by_id([subscriber_id]).get(int(subscriber_id))

    def subscribers_by_id(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        result: dict[int, dict[str, Any]] = {}
        unique = sorted({int(i) for i in ids})
        for start in range(0, len(unique), PAGE_LIMIT):
            chunk = unique[start : start + PAGE_LIMIT]
            params = {"id:in": _csv(chunk), "limit": PAGE_LIMIT}
            for item in self._data("/v3/customers/subscribers", params) or []:
                result[int(item["id"])] = item
        return result

    def subscribers(self, **filters: Any) -> V3Pages:
        return V3Pages(self, "/v3/customers/subscribers", dict(filters))

    def create_subscriber(self, subscriber: Mapping[str, Any]) -> dict[str, Any]:
        body = self.request("POST", "/v3/customers/subscribers", json=dict(subscriber)).data or {}
        return body.get("data") or {}

    def update_subscriber(self, subscriber_id: int, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        body = self.request("PUT", f"/v3/customers/subscribers/{int(subscriber_id)}", json=dict(fields)).data
        return None if body is None else body.get("data")

    def set_subscriber_consents(self, subscriber_id: int, consents: Sequence[str]) -> dict[str, Any] | None:
        return self.update_subscriber(subscriber_id, {"consents": list(consents)})

    # -- orders ----------------------------------------------------------------------------

    ORDER_INCLUDE: ClassVar[dict[str, str]] = {
        "include": "consignments.line_items",
        "consignment_structure": "object",
    }

    def order(self, order_id: int) -> dict[str, Any] | None:
        """The order with its line items in the same call (consignments.line_items)."""
        return self.get(f"/v2/orders/{int(order_id)}", self.ORDER_INCLUDE)

    def orders(self, **filters: Any) -> V2Pages:
        """Orders by id ascending (`min_id` keyset), line items included."""
        return V2Pages(self, "/v2/orders", {**self.ORDER_INCLUDE, **filters})

    def order_products(self, order_id: int) -> list[dict[str, Any]]:
        products: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self.get(f"/v2/orders/{int(order_id)}/products", {"page": page, "limit": PAGE_LIMIT})
            if not batch:
                return products
            products.extend(batch)
            if len(batch) < PAGE_LIMIT:
                return products
            page += 1

    def order_statuses(self) -> list[dict[str, Any]]:
        return self.get("/v2/order_statuses") or []

    def refund(self, refund_id: int) -> dict[str, Any] | None:
        return self._data(f"/v3/orders/payment_actions/refunds/{int(refund_id)}")

    def refunds(self, order_ids: Sequence[int] = (), refund_ids: Sequence[int] = ()) -> list[dict[str, Any]]:
        params: dict[str, Any] = {}
        if order_ids:
            params["order_id:in"] = _csv(sorted(set(order_ids)))
        if refund_ids:
            params["id:in"] = _csv(sorted(set(refund_ids)))
        return list(V3Pages(self, "/v3/orders/payment_actions/refunds", params).items())

    # -- carts -----------------------------------------------------------------------------

    def cart(self, cart_id: str) -> dict[str, Any] | None:
        return self._data(f"/v3/carts/{cart_id}", {"include": "redirect_urls"})

    def _written(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST or PUT `body`; the object BigCommerce answers with (its `data`)."""
        return (self.request(method, path, json=dict(body)).data or {}).get("data") or {}

    # -- hooks -----------------------------------------------------------------------------

    def hooks(self) -> list[dict[str, Any]]:
        return list(V3Pages(self, "/v3/hooks").items())

    def create_hook(self, hook: Mapping[str, Any]) -> dict[str, Any]:
        return self._written("POST", "/v3/hooks", hook)

    def update_hook(self, hook_id: int, fields: Mapping[str, Any]) -> dict[str, Any]:
        return self._written("PUT", f"/v3/hooks/{int(hook_id)}", fields)

    def delete_hook(self, hook_id: int) -> None:
        self.request("DELETE", f"/v3/hooks/{int(hook_id)}")

    # -- scripts ---------------------------------------------------------------------------

    def scripts(self, **filters: Any) -> list[dict[str, Any]]:
        return list(V3Pages(self, "/v3/content/scripts", dict(filters)).items())

    def create_script(self, script: Mapping[str, Any]) -> dict[str, Any]:
        return self._written("POST", "/v3/content/scripts", script)

    def update_script(self, uuid: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        return self._written("PUT", f"/v3/content/scripts/{uuid}", fields)

    def delete_script(self, uuid: str) -> None:
        self.request("DELETE", f"/v3/content/scripts/{uuid}")


class CallBuffer:
    """Collects attempt records during remote work; `flush(session)` writes them as RemoteCall rows in
    the same short transaction as the work's state (no database lock is held during network calls).
    Thread-safe: an export's page reader records into the same buffer as its sender."""

    def __init__(self, context: str = "") -> None:
        self.context = context
        self.calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, fields: dict[str, Any]) -> None:
        with self._lock:
            self.calls.append(fields)

    def flush(self, session: Any) -> list[dict[str, Any]]:
        """Write and forget the records; returns them, for `put_back` if the transaction fails."""
        with self._lock:
            taken, self.calls = self.calls, []
        for fields in taken:
            record_call(session, **fields)
        return taken

    def put_back(self, taken: list[dict[str, Any]]) -> None:
        with self._lock:
            self.calls = taken + self.calls


def for_store(
    store: Any,
    *,
    recorder: Recorder | None = None,
    priority: Priority = "realtime",
    context: str = "",
    http: httpx.Client | None = None,
    base_url: str | None = None,
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
    )


def shared_http() -> httpx.Client:
    """One connection pool for the process (keep-alive to api.bigcommerce.com)."""
    return shared_client(
        SERVICE,
        lambda: httpx.Client(
            timeout=DEFAULT_TIMEOUT, limits=httpx.Limits(max_connections=100, max_keepalive_connections=40)
        ),
    )
