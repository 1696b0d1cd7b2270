from __future__ import annotations

import threading
import uuid
from typing import Any

import httpx
import pytest

from smbc.bigcommerce.client import (
    DEFAULT_RATE_LIMIT_WAIT_S,
    BigCommerceClient,
    CallBuffer,
    V3Pages,
    classify_status,
)
from smbc.bigcommerce.limiter import LocalLimiter
from smbc.core.clock import FakeClock
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError
from support import wait_for

BASE = "https://api.example.test"


def order(order_id: int) -> dict[str, Any]:
    """The least a /v2 order answer holds for the product to use it."""
    return {"id": order_id, "status_id": 11, "date_created": "Tue, 20 Nov 2012 00:00:00 +0000"}


def make_client(handler, *, clock: FakeClock | None = None, attempts: int = 3, **kw: Any):
    clock = clock or FakeClock()
    calls = CallBuffer()
    client = BigCommerceClient(
        "abc123",
        "secret-token",
        BASE,
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        recorder=calls,
        policy=BackoffPolicy(attempts=attempts, base=0.5, cap=4),
        limiter=kw.pop("limiter", None) or LocalLimiter(clock=clock),
        clock=clock,
        store_id=None,
        context="test",
        **kw,
    )
    return client, calls, clock


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, Outcome.SUCCESS),
        (204, Outcome.SUCCESS),
        (404, Outcome.IGNORED),
        (401, Outcome.CREDENTIALS),
        (403, Outcome.CREDENTIALS),
        (429, Outcome.RATE_LIMITED),
        (500, Outcome.RETRY),
        (503, Outcome.RETRY),
        (400, Outcome.INVALID),
        (409, Outcome.INVALID),
        (422, Outcome.INVALID),
    ],
)
def test_status_table(status: int, outcome: Outcome) -> None:
    assert classify_status(status) is outcome


def test_sends_token_and_json_and_records_the_attempt_without_secrets() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"data": [{"id": 7, "email": "a@b.c"}], "meta": {}})

    client, calls, _ = make_client(handler)
    assert client.customer(7) == {"id": 7, "email": "a@b.c"}
    request = seen[0]
    assert request.headers["x-auth-token"] == "secret-token"
    assert request.headers["accept"] == "application/json"
    assert request.url.path == "/stores/abc123/v3/customers"
    assert request.url.params["id:in"] == "7" and request.url.params["include"] == "addresses"
    [call] = calls.calls
    assert call["endpoint"] == "/v3/customers" and call["outcome"] == "success" and call["status"] == 200
    assert "secret-token" not in repr(call)


def test_404_is_ignored_and_returns_none() -> None:
    client, calls, _ = make_client(lambda r: httpx.Response(404, json={"title": "Not found"}))
    assert client.order(5) is None
    assert client.cart("x") is None
    assert [c["outcome"] for c in calls.calls] == ["ignored", "ignored"]


def test_204_is_an_empty_success() -> None:
    client, _, _ = make_client(lambda r: httpx.Response(204))
    assert client.order_products(1) == []


@pytest.mark.parametrize(
    ("status", "outcome"), [(401, "credentials"), (403, "credentials"), (422, "invalid")]
)
def test_not_retryable_fails_at_once_with_the_message(status: int, outcome: str) -> None:
    client, calls, _ = make_client(
        lambda r: httpx.Response(status, json={"title": "The field 'email' is invalid"})
    )
    with pytest.raises(RemoteCallError) as info:
        client.create_subscriber({"email": "nope"})
    assert info.value.outcome.value == outcome
    assert "email' is invalid" in info.value.message
    assert len(calls.calls) == 1


def test_5xx_retries_with_backoff_then_succeeds() -> None:
    answers = iter([httpx.Response(502), httpx.Response(503), httpx.Response(200, json=order(1))])
    client, calls, clock = make_client(lambda r: next(answers))
    start = clock.time()
    assert client.order(1) == order(1)
    assert [c["outcome"] for c in calls.calls] == ["retry", "retry", "success"]
    assert [c["attempt"] for c in calls.calls] == [1, 2, 3]
    assert clock.time() - start <= 0.5 + 1.0  # full jitter within the policy's ceilings


def test_network_error_and_timeout_are_retry_and_give_up_after_attempts() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("slow")

    client, calls, _ = make_client(handler, attempts=2)
    with pytest.raises(RemoteCallError) as info:
        client.order(1)
    assert info.value.outcome is Outcome.RETRY
    assert len(calls.calls) == 2 and "timeout" in calls.calls[0]["message"]


def test_429_waits_for_the_reset_header() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"X-Rate-Limit-Time-Reset-Ms": "2500"}),
            httpx.Response(200, json=order(1)),
        ]
    )
    client, _, clock = make_client(lambda r: next(answers))
    start = clock.time()
    assert client.order(1) == order(1)
    assert clock.time() - start == pytest.approx(2.5)


def test_429_without_headers_waits_the_default_and_reports_it() -> None:
    client, _, _ = make_client(lambda r: httpx.Response(429), attempts=1)
    with pytest.raises(RemoteCallError) as info:
        client.order(1)
    assert info.value.outcome is Outcome.RATE_LIMITED
    assert info.value.retry_after == DEFAULT_RATE_LIMIT_WAIT_S


def test_v2_pages_move_on_by_min_id_until_204() -> None:
    orders = [order(i) for i in range(1, 6)]
    seen_params: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        seen_params.append(params)
        start = int(params.get("min_id", 1))
        page = [o for o in orders if o["id"] >= start][: int(params["limit"])]
        return httpx.Response(200, json=page) if page else httpx.Response(204)

    client, _, _ = make_client(handler)
    pages = client.orders(min_date_modified="2026-01-01")
    pages.limit = 2
    assert [o["id"] for o in pages.items()] == [1, 2, 3, 4, 5]
    assert [p.get("min_id") for p in seen_params] == [None, "3", "5"]
    assert all(p["sort"] == "id:asc" and p["include"] == "consignments.line_items" for p in seen_params)
    assert pages.cursor == 5


def test_v2_pages_stop_on_204_after_full_page() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "min_id" in request.url.params:
            return httpx.Response(204)
        return httpx.Response(200, json=[order(1), order(2)])

    client, calls, _ = make_client(handler)
    pages = client.orders()
    pages.limit = 2
    assert [o["id"] for o in pages.items()] == [1, 2]
    assert len(calls.calls) == 2


def test_v3_pages_follow_the_cursor() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        if after is None:
            meta = {
                "pagination": {"current_page": 1, "total_pages": 2},
                "cursor_pagination": {"end_cursor": "c1", "links": {"next": "?after=c1"}},
            }
            return httpx.Response(200, json={"data": [{"id": 1, "email": "a@b.c"}], "meta": meta})
        assert after == "c1"
        meta = {"cursor_pagination": {"end_cursor": "c2", "links": {}}}
        return httpx.Response(200, json={"data": [{"id": 2, "email": "b@b.c"}], "meta": meta})

    client, _, _ = make_client(handler)
    assert [c["id"] for c in client.customers(**{"date_modified:min": "2026-01-01"}).items()] == [1, 2]


def test_v3_pages_fall_back_to_page_numbers() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        meta = {"pagination": {"current_page": page, "total_pages": 3}}
        return httpx.Response(200, json={"data": [{"id": page}], "meta": meta})

    client, _, _ = make_client(handler)
    assert [h["id"] for h in client.hooks()] == [1, 2, 3]


def test_limiter_keeps_three_in_flight_per_store() -> None:
    clock = FakeClock()
    limiter = LocalLimiter(clock=clock)
    gate = threading.Event()
    lock = threading.Lock()
    in_flight = {"now": 0, "peak": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            in_flight["now"] += 1
            in_flight["peak"] = max(in_flight["peak"], in_flight["now"])
        gate.wait(5)
        with lock:
            in_flight["now"] -= 1
        return httpx.Response(200, json=order(1))

    client, _, _ = make_client(handler, clock=clock, limiter=limiter)
    threads = [threading.Thread(target=client.order, args=(1,)) for _ in range(8)]
    for t in threads:
        t.start()
    wait_for(lambda: in_flight["now"] >= 3, "three requests in flight", timeout=5)
    assert in_flight["now"] == 3
    gate.set()
    for t in threads:
        t.join(5)
    assert in_flight["peak"] == 3 and limiter.peak_in_flight["abc123"] == 3


def _quota_headers(left: int, quota: int = 100, reset_ms: int = 10_000) -> dict[str, str]:
    return {
        "X-Rate-Limit-Requests-Left": str(left),
        "X-Rate-Limit-Requests-Quota": str(quota),
        "X-Rate-Limit-Time-Reset-Ms": str(reset_ms),
        "X-Rate-Limit-Time-Window-Ms": "30000",
    }


def test_export_waits_for_the_window_while_realtime_keeps_the_reserve() -> None:
    clock = FakeClock()
    limiter = LocalLimiter(clock=clock)
    limiter.observe("abc123", _quota_headers(left=25))  # 25 % of the quota left: below export's reserve
    start = clock.monotonic()
    with limiter.slot("abc123", "realtime"):
        pass
    assert clock.monotonic() == start  # real time goes on at once
    with limiter.slot("abc123", "export"):
        pass
    assert clock.monotonic() - start == pytest.approx(10.0)  # export waited for the reset


def test_realtime_waits_when_nothing_is_left() -> None:
    clock = FakeClock()
    limiter = LocalLimiter(clock=clock)
    limiter.observe("abc123", _quota_headers(left=0, reset_ms=3000))
    start = clock.monotonic()
    with limiter.slot("abc123", "realtime"):
        pass
    assert clock.monotonic() - start == pytest.approx(3.0)


def test_limiter_counts_requests_before_answers_arrive() -> None:
    clock = FakeClock()
    limiter = LocalLimiter(clock=clock)
    limiter.observe("abc123", _quota_headers(left=2, reset_ms=4000))
    start = clock.monotonic()
    for _ in range(2):
        with limiter.slot("abc123", "realtime"):
            pass
    assert clock.monotonic() == start
    with limiter.slot("abc123", "realtime"):
        pass
    assert clock.monotonic() - start == pytest.approx(4.0)


def test_an_answer_does_not_give_back_what_requests_still_in_flight_will_use() -> None:
    # Two requests are out when the first one's answer says one request is left: the second one will
    # take it, so a third must wait for the window's reset (it went over the quota before).
    clock = FakeClock()
    limiter = LocalLimiter(clock=clock)
    limiter.observe("abc123", _quota_headers(left=2, reset_ms=4000))
    start = clock.monotonic()
    with limiter.slot("abc123", "realtime"), limiter.slot("abc123", "realtime"):
        limiter.observe("abc123", _quota_headers(left=1, reset_ms=4000))
    with limiter.slot("abc123", "realtime"):
        pass
    assert clock.monotonic() - start == pytest.approx(4.0)


def test_client_feeds_the_limiter_from_response_headers() -> None:
    clock = FakeClock()
    limiter = LocalLimiter(clock=clock)
    client, _, _ = make_client(
        lambda r: httpx.Response(200, json=order(1), headers=_quota_headers(left=10, quota=150)),
        clock=clock,
        limiter=limiter,
        priority="export",
    )
    start = clock.monotonic()
    client.order(1)
    client.order(1)  # 10 left <= 45 (30 % of 150): export waits for the reset first
    assert clock.monotonic() - start == pytest.approx(10.0)


def test_redis_limiter_shares_slots_between_instances(redis_url: str) -> None:
    from smbc.bigcommerce.limiter import RedisLimiter

    clock = FakeClock()
    prefix = f"test:bc:{uuid.uuid4().hex[:8]}"  # test sessions running at once share this Redis
    a = RedisLimiter(redis_url, clock=clock, prefix=prefix)
    b = RedisLimiter(redis_url, clock=clock, prefix=prefix)
    held = [a.slot("s1", "realtime"), a.slot("s1", "realtime"), b.slot("s1", "realtime")]
    for cm in held:
        cm.__enter__()
    got = threading.Event()

    def fourth() -> None:
        with b.slot("s1", "realtime"):
            got.set()

    t = threading.Thread(target=fourth)
    t.start()
    assert not got.wait(0.2)
    held[0].__exit__(None, None, None)
    assert got.wait(5)
    t.join(5)
    for cm in held[1:]:
        cm.__exit__(None, None, None)
    a.observe("s1", _quota_headers(left=20, quota=100, reset_ms=7000))
    start = clock.time()
    with b.slot("s1", "export"):
        pass
    assert clock.time() - start == pytest.approx(7.0, abs=0.01)
    a.close()
    b.close()


def test_redis_slots_do_not_expire_when_the_clock_is_moved(redis_url: str) -> None:
    from smbc.bigcommerce.limiter import RedisLimiter

    clock = FakeClock()
    limiter = RedisLimiter(redis_url, clock=clock, prefix=f"test:bc:{uuid.uuid4().hex[:8]}")
    held = [limiter.slot("s2", "realtime") for _ in range(3)]
    for cm in held:
        cm.__enter__()
    clock.advance(3600)  # a test (or a quota wait) moving time must not free slots still in use
    got = threading.Event()

    def fourth() -> None:
        with limiter.slot("s2", "realtime"):
            got.set()

    t = threading.Thread(target=fourth)
    t.start()
    assert not got.wait(0.2)
    for cm in held:
        cm.__exit__(None, None, None)
    assert got.wait(5)
    t.join(5)
    limiter.close()


def test_sites_page_by_their_item_count() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        page = request.url.params["page"]
        asked.append(page)
        meta = {"pagination": {"offset": int(page) - 1, "limit": 1, "total_items": 2}}
        return httpx.Response(
            200, json={"data": [{"id": int(page), "channel_id": 1, "url": "https://shop.test"}], "meta": meta}
        )

    client, calls, _ = make_client(handler)
    pages = V3Pages(client, "/v3/sites", limit=1)
    assert [site["id"] for site in pages.items()] == [1, 2]
    assert asked == ["1", "2"]
    assert all(call["message"] == "" for call in calls.calls)  # the offset style is no surprise


def test_redis_answers_do_not_give_back_what_other_processes_have_in_flight(redis_url: str) -> None:
    from smbc.bigcommerce.limiter import RedisLimiter

    clock = FakeClock()
    prefix = f"test:bc:{uuid.uuid4().hex[:8]}"
    a = RedisLimiter(redis_url, clock=clock, prefix=prefix)
    b = RedisLimiter(redis_url, clock=clock, prefix=prefix)
    a.observe("s3", _quota_headers(left=2, reset_ms=4000))
    start = clock.time()
    with a.slot("s3", "realtime"), b.slot("s3", "realtime"):
        a.observe("s3", _quota_headers(left=1, reset_ms=4000))  # b's request will take the last one
    with b.slot("s3", "realtime"):
        pass
    assert clock.time() - start == pytest.approx(4.0, abs=0.01)
    a.close()
    b.close()


def test_redis_answer_observed_under_a_slot_is_written_with_its_release(redis_url: str) -> None:
    import redis

    from smbc.bigcommerce.limiter import RedisLimiter

    clock = FakeClock()
    prefix = f"test:bc:{uuid.uuid4().hex[:8]}"
    a = RedisLimiter(redis_url, clock=clock, prefix=prefix)
    b = RedisLimiter(redis_url, clock=clock, prefix=prefix)
    raw = redis.Redis.from_url(redis_url)
    with b.slot("s4", "realtime"):
        with a.slot("s4", "realtime"):
            a.observe("s4", _quota_headers(left=1, reset_ms=4000))
            assert raw.hget(f"{prefix}:s4:quota", "left") is None  # not yet: with the release
        # Written at the release, b's request still counted as in flight: none left.
        assert raw.zcard(f"{prefix}:s4:slots") == 1
        assert a.quota_wait("s4") == pytest.approx(4.0, abs=0.01)
    assert raw.zcard(f"{prefix}:s4:slots") == 0
    raw.close()
    a.close()
    b.close()
