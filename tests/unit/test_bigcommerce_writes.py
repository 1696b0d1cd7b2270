"""What the client hands back from a create: the object made, or an error when nothing was made (a
404 on the collection), never an empty object a caller would read an id from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.bigcommerce.limiter import LocalLimiter
from smbc.core.clock import FakeClock
from smbc.core.remote_calls import BackoffPolicy, Outcome, RemoteCallError, Service

CREATES: dict[str, Callable[[BigCommerceClient], Any]] = {
    "hook": lambda c: c.create_hook({"scope": "store/order/created"}),
    "script": lambda c: c.create_script({"name": "SALESmanago monitoring"}),
    "subscriber": lambda c: c.create_subscriber({"email": "sub@example.com"}),
}


def client_answering(status: int, calls: CallBuffer) -> BigCommerceClient:
    clock = FakeClock()
    return BigCommerceClient(
        "abc123",
        "token",
        "https://api.example.test",
        http=httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(status))),
        recorder=calls,
        policy=BackoffPolicy(attempts=1),
        limiter=LocalLimiter(clock=clock),
        clock=clock,
    )


@pytest.mark.parametrize("kind", list(CREATES))
def test_a_create_answered_404_is_an_invalid_outcome_not_an_empty_object(kind: str) -> None:
    calls = CallBuffer()
    with pytest.raises(RemoteCallError) as error:
        CREATES[kind](client_answering(404, calls))
    assert error.value.outcome is Outcome.INVALID and error.value.service is Service.BIGCOMMERCE
    assert "nothing was created" in error.value.message
    assert [(c["method"], c["status"]) for c in calls.calls] == [("POST", 404)]
