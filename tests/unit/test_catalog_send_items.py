"""A catalog sync's page of products goes to SALESmanago as calls of 100, sent at once: a refused call
counts its products and the others go in; any other error is raised once every call has ended."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from smbc.catalog.sync import send_items
from smbc.core.remote_calls import Outcome, RemoteCallError, Service
from smbc.salesmanago.catalog import ProductsWritten

WAIT_S = 5.0  # a bound on a wait that the code under test ends at once when it works


class CatalogCalls:
    """Stands in for `CatalogApi.upsert_products`: every call waits until `together` are in flight."""

    def __init__(self, together: int, answers: dict[str, Exception] | None = None) -> None:
        self.all_in = threading.Barrier(together, timeout=WAIT_S)
        self.answers = answers or {}
        self.sent: list[list[str]] = []
        self.lock = threading.Lock()

    def upsert_products(self, catalog_id: str, items: list[dict[str, Any]]) -> ProductsWritten:
        ids = [str(i["productId"]) for i in items]
        self.all_in.wait()
        with self.lock:
            self.sent.append(ids)
        failure = self.answers.get(ids[0])
        if failure is not None:
            raise failure
        return ProductsWritten(sent=len(ids))


def items(count: int) -> list[dict[str, Any]]:
    return [{"productId": str(n), "name": f"Product {n}"} for n in range(1, count + 1)]


def test_a_pages_calls_are_in_flight_at_once() -> None:
    api = CatalogCalls(together=3)
    written = send_items(api, "catalog-1", items(250))  # type: ignore[arg-type]
    assert written.sent == 250 and not written.refused
    assert sorted(len(call) for call in api.sent) == [50, 100, 100]


def test_a_refused_call_counts_its_products_and_the_others_go_in() -> None:
    refused = RemoteCallError(Outcome.INVALID, "price is missing", service=Service.SALESMANAGO)
    api = CatalogCalls(together=3, answers={"101": refused})
    written = send_items(api, "catalog-1", items(300))  # type: ignore[arg-type]
    assert written.sent == 200
    assert written.refused == {str(n): "price is missing" for n in range(101, 201)}


def test_another_error_is_raised_after_every_call_has_ended() -> None:
    down = RemoteCallError(Outcome.RETRY, "SALESmanago answered 503", service=Service.SALESMANAGO)
    api = CatalogCalls(together=3, answers={"1": down})
    with pytest.raises(RemoteCallError, match="503"):
        send_items(api, "catalog-1", items(300))  # type: ignore[arg-type]
    assert len(api.sent) == 3  # none left running behind the error: the page is sent again whole
