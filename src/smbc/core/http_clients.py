"""One `httpx.Client` per remote service and process: keep-alive connections are reused, and the
SSL context (loading the CA bundle costs milliseconds) is built once, not once per call."""

from __future__ import annotations

import threading
from collections.abc import Callable

import httpx

_clients: dict[str, httpx.Client] = {}
_lock = threading.Lock()


def shared_client(service: str, build: Callable[[], httpx.Client]) -> httpx.Client:
    """The process's client for `service`, built by `build()` on first use (thread-safe)."""
    client = _clients.get(service)
    if client is None or client.is_closed:
        with _lock:
            client = _clients.get(service)
            if client is None or client.is_closed:
                client = _clients[service] = build()
    return client
