from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest
from fake_bc_harness import Harness, fake_bc_servers, harness_fixture  # noqa: F401

from smbc.core.clock import FakeClock
from smbc.core.http_server import BackgroundServer
from smbc.sandbox.bigcommerce import FakeBigCommerce
from support import wait_for

RATE_HEADERS = (
    "X-Rate-Limit-Requests-Left",
    "X-Rate-Limit-Requests-Quota",
    "X-Rate-Limit-Time-Window-Ms",
    "X-Rate-Limit-Time-Reset-Ms",
)


@pytest.fixture
def clocked() -> Iterator[tuple[FakeBigCommerce, FakeClock, str]]:
    clock = FakeClock()
    bc = FakeBigCommerce(client_id="c", client_secret="a-secret-long-enough-for-hs256-signing", clock=clock)
    with BackgroundServer(bc.app) as server:
        bc.bind(server.url)
        try:
            yield bc, clock, server.url
        finally:
            bc.close()


def test_every_response_has_rate_headers_and_the_quota_counts_down(harness: Harness) -> None:
    h = harness
    token = h.install()
    with h.api(token) as api:
        first = api.get("/v2/store")
        for name in RATE_HEADERS:
            assert name in first.headers
        assert first.headers["X-Rate-Limit-Requests-Quota"] == "450"
        assert first.headers["X-Rate-Limit-Time-Window-Ms"] == "30000"
        second = api.get("/v3/customers")
        left = int(second.headers["X-Rate-Limit-Requests-Left"])
        assert left == int(first.headers["X-Rate-Limit-Requests-Left"]) - 1
        assert 0 < int(second.headers["X-Rate-Limit-Time-Reset-Ms"]) <= 30000
    with h.api("bad") as api:
        assert "X-Rate-Limit-Requests-Left" in api.get("/v2/store").headers  # errors carry them too


def test_exhausted_quota_is_429_until_the_window_resets(
    clocked: tuple[FakeBigCommerce, FakeClock, str],
) -> None:
    bc, clock, url = clocked
    store_hash = bc.default_store_hash
    token = bc.issue_token(store_hash, "c", ["store_v2_orders_read_only"])
    bc.set_quota(store_hash, requests=3, window_s=30)
    with httpx.Client(base_url=f"{url}/stores/{store_hash}", headers={"X-Auth-Token": token}) as api:
        assert [api.get("/v2/order_statuses").status_code for _ in range(3)] == [200, 200, 200]
        clock.advance(10)
        limited = api.get("/v2/order_statuses")
        assert limited.status_code == 429
        assert limited.headers["X-Rate-Limit-Requests-Left"] == "0"
        assert limited.headers["X-Rate-Limit-Time-Reset-Ms"] == "20000"
        assert limited.headers["X-Retry-After"] == "20"
        clock.advance(20)
        assert api.get("/v2/order_statuses").status_code == 200
    assert bc.requests_by_store[store_hash] == 5
    assert bc.over_quota[store_hash] == 1  # the refused one; the window's allowed ones are not counted


def test_quotas_are_per_store(clocked: tuple[FakeBigCommerce, FakeClock, str]) -> None:
    bc, _, url = clocked
    other = bc.add_store(name="Second")
    bc.set_quota(bc.default_store_hash, requests=1)
    for store_hash in (bc.default_store_hash, other):
        token = bc.issue_token(store_hash, "c", ["store_v2_orders_read_only"])
        with httpx.Client(base_url=f"{url}/stores/{store_hash}", headers={"X-Auth-Token": token}) as api:
            codes = [api.get("/v2/order_statuses").status_code for _ in range(2)]
            assert codes == ([200, 429] if store_hash == bc.default_store_hash else [200, 200])


def test_fault_knobs(harness: Harness) -> None:
    h = harness
    token = h.install()
    with h.api(token) as api:
        h.bc.faults.error_rate = 1.0
        failed = api.get("/v2/store")
        assert failed.status_code == 500 and "X-Rate-Limit-Requests-Left" in failed.headers
        h.bc.faults.error_rate = 0.0
        h.bc.faults.rate_limit_without_headers = 1.0
        overloaded = api.get("/v2/store")
        assert overloaded.status_code == 429
        assert not any(name in overloaded.headers for name in RATE_HEADERS)
        assert sum(h.bc.over_quota.values()) == 0  # an overload 429 is not the quota's
        h.bc.faults.rate_limit_without_headers = 0.0
        h.bc.faults.timeout_rate = 1.0
        h.bc.faults.timeout_s = 5
        with pytest.raises(httpx.ReadTimeout):
            api.get("/v2/store", timeout=0.3)
        h.bc.faults.timeout_rate = 0.0
        assert api.get("/v2/store").status_code == 200
    # Shares are shares: about half the requests fail at 0.5.
    h.bc.faults.error_rate = 0.5
    with h.api(token) as api:
        codes = [api.get("/v2/time").status_code for _ in range(200)]
    h.bc.faults.error_rate = 0.0
    assert 50 < codes.count(500) < 150


def test_latency_and_most_requests_in_flight(harness: Harness) -> None:
    h = harness
    token = h.install()
    h.bc.faults.latency_ms = 20
    h.bc.faults.hold = True

    def call() -> None:
        with h.api(token) as api:
            assert api.get("/v2/time").status_code == 200

    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: h.bc.in_flight[h.store_hash] >= 5, "five requests in flight", timeout=10)
    finally:
        h.bc.faults.hold = False
        for t in threads:
            t.join()
    assert h.bc.max_in_flight[h.store_hash] == 5
    assert h.bc.requests_by_store[h.store_hash] == 5


def test_busiest_windows_count_every_request_received_refused_ones_too(
    clocked: tuple[FakeBigCommerce, FakeClock, str],
) -> None:
    bc, clock, url = clocked
    store_hash = bc.default_store_hash
    token = bc.issue_token(store_hash, "c", ["store_v2_orders_read_only"])
    bc.set_quota(store_hash, requests=3, window_s=10)
    with httpx.Client(base_url=f"{url}/stores/{store_hash}", headers={"X-Auth-Token": token}) as api:
        assert api.get("/v2/order_statuses").status_code == 200  # the fake's window starts here
        clock.advance(8)
        assert api.get("/v2/order_statuses").status_code == 200
        clock.advance(4)  # a new window of the fake's; 4 s ago is still within a sliding span
        assert [api.get("/v2/order_statuses").status_code for _ in range(4)] == [200, 200, 200, 429]
        assert bc.busiest_quota_window[store_hash] == 4  # the refused one counts as received
        assert bc.busiest_sliding_window[store_hash] == 5
        clock.advance(20)
        api.get("/v2/order_statuses")
    assert (bc.busiest_quota_window[store_hash], bc.busiest_sliding_window[store_hash]) == (4, 5)
    bc.set_quota(store_hash, requests=3, window_s=10)
    assert bc.busiest_quota_window[store_hash] == bc.busiest_sliding_window[store_hash] == 0
