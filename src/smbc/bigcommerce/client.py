"""THE BigCommerce REST client: one classification table, pagination objects, a per-store limiter.

Every area that talks to BigCommerce (set-up, webhooks, real time, reconciliation, export, consent
write-back, monitoring scripts) goes through `BigCommerceClient`. Each attempt is handed to the
`recorder` (a `RemoteCall` row in the end), and the per-store limiter keeps every thread (and, with
Redis, every worker process) within 3 requests in flight and the store's quota.

Every answer a typed method returns is read through its model (`bigcommerce.answers`): a required
field missing or wrongly typed is an `invalid` outcome recorded on the call; an ignored
opportunistic field is named in the call's recorded message.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
    V3Pagination,
    as_dict,
    list_item_model,
)
from smbc.bigcommerce.limiter import StoreLimiter, get_limiter
from smbc.core.answers import AnswerError, AnswerModel, read_answer
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
        return "; ".join(str(item.get("message", "")) for item in body if isinstance(item, dict))[:500]
    return response.reason_phrase


@dataclass
class Response:
    status: int
    data: Any  # parsed JSON body (read as the call's answer model when one is given), or None for 204 / 404
    headers: Mapping[str, str]


def _dicts(items: Sequence[Any]) -> list[dict[str, Any]]:
    return [as_dict(item) if isinstance(item, AnswerModel) else item for item in items]


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
        item = list_item_model(self.path)
        if item is dict[str, Any]:
            raise ValueError(f"V2Pages needs an item model with an id for {self.path}")  # keyset paging
        while True:
            params = {**self.params, "limit": self.limit, "sort": "id:asc"}
            if self.cursor is not None:
                params["min_id"] = self.cursor + 1
            page = self.client.request("GET", self.path, params, answer=list[item]).data or []
            if not page:
                return
            self.cursor = max(int(entry.id) for entry in page)
            yield _dicts(page)
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
    # The model of one item; None: the one `answers.LIST_ITEMS` registers for the path.
    item: Any = None

    def __iter__(self) -> Iterator[list[dict[str, Any]]]:
        while True:
            params = {**self.params, "limit": self.limit}
            if self.cursor is not None:
                params["after"] = self.cursor
            else:
                params["page"] = self.page
            answer = V3List[self.item or list_item_model(self.path)]  # type: ignore[misc]
            body = self.client.request("GET", self.path, params, answer=answer).data
            data = body.data if body is not None else []
            meta = body.meta if body is not None else None
            if data:
                yield _dicts(data)
            cursor_meta = meta.cursor_pagination if meta is not None else None
            if cursor_meta is not None and data:
                next_cursor = cursor_meta.end_cursor
                has_next_link = bool(cursor_meta.links and cursor_meta.links.next)
                if next_cursor and has_next_link and str(next_cursor) != self.cursor:
                    self.cursor = str(next_cursor)
                    continue
            if self.cursor is not None or not data:
                return
            next_page = self._next_page(len(data), meta.pagination if meta is not None else None)
            if next_page is None:
                return
            self.page = next_page

    def _next_page(self, count: int, pagination: V3Pagination | None) -> int | None:
        """The page number to ask for next, or None at the end of the list."""
        pages = pagination.page_count(self.limit) if pagination is not None else None
        if pagination is None or pages is None:
            # No page count: a full page may have a next one, so ask (an empty page ends it).
            return self.page + 1 if count >= self.limit else None
        current = max(pagination.current_page or 0, self.page)  # never asks for a page twice
        return current + 1 if current < pages else None

    def items(self) -> Iterator[dict[str, Any]]:
        for page in self:
            yield from page


# `data` of an attempt whose answer could not be read (its message already names the call).
_UNREADABLE = object()


def _read_body(response: httpx.Response, answer: Any, call: str) -> tuple[Outcome, str, Any]:
    """(outcome, message, data) of a successful response: its JSON, read as `answer` when given.

    Ignored opportunistic fields go in the message, so the recorded call shows them."""
    if response.status_code == 204 or not response.content:
        return Outcome.SUCCESS, "", None
    try:
        body = response.json()
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
        *,
        answer: Any = None,
    ) -> Response:
        """Send with retries; returns on SUCCESS or IGNORED (404, data None), raises otherwise.

        With `answer` (an answer model, or e.g. `list[Model]`) the body is read through it: an
        unreadable answer is an `invalid` outcome, recorded on the call and raised."""
        attempt = 0
        while True:
            attempt += 1
            outcome, response, message, data = self._attempt(method, path, params, json, attempt, answer)
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
        headers = {
            "X-Auth-Token": self._token,
            "Accept": "application/json",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        response: httpx.Response | None = None
        data: Any = None
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
            products.extend(_dicts(batch))
            if len(batch) < PAGE_LIMIT:
                return products
            page += 1

    def order_statuses(self) -> list[dict[str, Any]]:
        return _dicts(self._read("/v2/order_statuses", list[OrderStatus]) or [])

    def refund(self, refund_id: int) -> dict[str, Any] | None:
        return self._one(f"/v3/orders/payment_actions/refunds/{int(refund_id)}", Refund)

    def refunds(self, order_ids: Sequence[int] = (), refund_ids: Sequence[int] = ()) -> list[dict[str, Any]]:
        params: dict[str, Any] = {}
        if order_ids:
            params["order_id:in"] = _csv(sorted(set(order_ids)))
        if refund_ids:
            params["id:in"] = _csv(sorted(set(refund_ids)))
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
