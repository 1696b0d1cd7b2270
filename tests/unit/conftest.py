"""Fixtures for unit tests of the control-panel callbacks (helpers in bc_fakes.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from bc_fakes import LoginServer, bc_claims, login_app, sign

from smbc.core.clock import FakeClock, set_clock
from smbc.core.http_server import BackgroundServer


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    """The process clock swapped for one that moves only when told (`sleep` advances it)."""
    fake = FakeClock()
    previous = set_clock(fake)
    yield fake
    set_clock(previous)


@pytest.fixture
def bc_jwt() -> Callable[..., str]:
    """bc_jwt(store_hash, user=..., **claim_overrides) -> a payload signed as BigCommerce would."""

    def make(store_hash: str = "abc123", user: dict | None = None, **overrides: Any) -> str:
        return sign(bc_claims(store_hash, user, **overrides))

    return make


@pytest.fixture
def login_server() -> Iterator[LoginServer]:
    state = LoginServer()
    with BackgroundServer(login_app(state)) as server:
        state.url = server.url
        yield state
