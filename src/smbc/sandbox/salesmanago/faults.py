"""Switches that make the fake slow or broken, so tests and the demo can see retries and failures."""

from __future__ import annotations

import random
import threading
from collections import deque


class Faults:
    """`latency_ms` delays every API answer; `error_rate` (0..1) answers that share with HTTP 500;
    `down` answers 503; `fail_next(n, status)` fails exactly the next n API calls."""

    def __init__(self, seed: int | None = None) -> None:
        self.latency_ms: int = 0
        self.error_rate: float = 0.0
        self.down: bool = False
        self._next: deque[int] = deque()
        self._random = random.Random(seed)
        self._lock = threading.Lock()

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        if n < 0 or not 400 <= status <= 599:
            raise ValueError("fail_next needs n >= 0 and an HTTP error status (400-599)")
        with self._lock:
            self._next.extend([status] * n)

    @property
    def pending_failures(self) -> int:
        with self._lock:
            return len(self._next)

    def reset(self) -> None:
        with self._lock:
            self.latency_ms = 0
            self.error_rate = 0.0
            self.down = False
            self._next.clear()

    def failure_status(self) -> int | None:
        """The status this request must fail with, or None to answer normally."""
        with self._lock:
            if self.down:
                return 503
            if self._next:
                return self._next.popleft()
            if self.error_rate > 0 and self._random.random() < self.error_rate:
                return 500
            return None

    def snapshot(self) -> dict[str, object]:
        return {
            "latency_ms": self.latency_ms,
            "error_rate": self.error_rate,
            "down": self.down,
            "fail_next": self.pending_failures,
        }
