"""Switches that make the fake slow or broken, so tests and the demo can see retries and failures."""

from __future__ import annotations

import random
import threading
from collections import deque
from dataclasses import InitVar, dataclass, fields


@dataclass(kw_only=True)
class Faults:
    """`latency_ms` delays every API answer; `error_rate` (0..1) answers that share with HTTP 500;
    `down` answers 503; `fail_next(n, status)` fails exactly the next n API calls."""

    # The switches, as fields: `reset` restores these defaults and `snapshot` lists them.
    latency_ms: int = 0
    error_rate: float = 0.0
    down: bool = False
    seed: InitVar[int | None] = None

    def __post_init__(self, seed: int | None) -> None:
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
            for switch in fields(self):
                setattr(self, switch.name, switch.default)
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
            **{switch.name: getattr(self, switch.name) for switch in fields(self)},
            "fail_next": self.pending_failures,
        }
