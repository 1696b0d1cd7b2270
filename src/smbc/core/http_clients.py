"""One `httpx.Client` per remote service and process: keep-alive connections are reused, and the
SSL context (loading the CA bundle costs milliseconds) is built once, not once per call. A shared
client serves every store, so it keeps no cookies: one store's Set-Cookie is never sent on another's call.

And the guard both API clients consult before every request: while enabled (the test suite enables
it), a remote call made by a thread inside an open database transaction raises, because a slow
remote answer would hold the transaction's locks and connection for as long as it takes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.cookiejar import CookieJar, CookiePolicy
from typing import Any

import httpx

from smbc.db.session import open_sessions_in_this_thread

_clients: dict[str, httpx.Client] = {}
_lock = threading.Lock()


def shared_client(service: str, build: Callable[[], httpx.Client]) -> httpx.Client:
    """The process's client for `service`, built by `build()` on first use (thread-safe)."""
    client = _clients.get(service)
    if client is None or client.is_closed:
        with _lock:
            client = _clients.get(service)
            if client is None or client.is_closed:
                client = build()
                client.cookies = CookieJar(policy=NoCookies())
                # A 3xx is an answer to classify, never followed: a redirect could point anywhere inside.
                client.follow_redirects = False
                _clients[service] = client
    return client


class NoCookies(CookiePolicy):
    """A cookie policy that accepts and returns no cookie at all."""

    netscape = True
    rfc2965 = False
    hide_cookie2 = True

    def set_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def return_ok(self, cookie: Any, request: Any) -> bool:
        return False

    def domain_return_ok(self, domain: str, request: Any) -> bool:
        return False

    def path_return_ok(self, path: str, request: Any) -> bool:
        return False


class RemoteCallInTransaction(RuntimeError):
    """A remote call was made while the calling thread had a database session open."""


_guard = {"enabled": False}


def forbid_remote_calls_in_transactions(enabled: bool = True) -> bool:
    """Turn the guard on (tests) or off (the default); returns what it was, to restore it."""
    previous = _guard["enabled"]
    _guard["enabled"] = enabled
    return previous


def check_no_open_transaction(service: str, method: str, url: str) -> None:
    """Called by both API clients before sending; raises RemoteCallInTransaction when the guard is on
    and the calling thread is inside a `Database.session()` block."""
    if _guard["enabled"] and open_sessions_in_this_thread():
        raise RemoteCallInTransaction(
            f"{service} {method} {url} called inside an open database transaction: make the call "
            "before the session opens or after it ends"
        )
