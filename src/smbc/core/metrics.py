"""Prometheus metrics: counters incremented where things happen, gauges read at scrape time.

Counters and histograms live in each process. With several processes on one host (`smbc serve` × N,
`smbc worker` × N), set `PROMETHEUS_MULTIPROC_DIR` to one directory they all share, before they
start: each process then writes its values to files there and whichever web process is scraped sums
them all, so a worker's deliveries show up although workers serve no HTTP. Without it, each process
keeps its own values (the embedded mode, where the workers are threads of `smbc serve`).

Gauges (queue depth, stores paused by reason) are not kept in any process: they are read from the
database when scraped (`exposition(gauges)`), so every web process answers the same.

No metric has a per-store label: with thousands of stores that would make thousands of series;
per store is in the health detail (`/readyz?detail=1`, the Activity tab).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

HTTP_REQUESTS = Counter(
    "smbc_http_requests_total",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
INSTALLS = Counter(
    "smbc_installs_total",
    "Auth callbacks, by result (installed, reinstalled, reauthorized, refused)",
    ["outcome"],
)
APP_LOADS = Counter("smbc_app_loads_total", "Load callbacks, by result (opened, refused)", ["outcome"])
UNINSTALLS = Counter("smbc_uninstalls_total", "Uninstall callbacks that removed a store's access")
USERS_REMOVED = Counter("smbc_users_removed_total", "Remove-user callbacks that unlinked a user")

DELIVERIES_PROCESSED = Counter(
    "smbc_deliveries_processed_total",
    "Inbox rows worked on, by webhook scope and resulting status (done, skipped, failed, pending: "
    "retried later, waiting: store paused)",
    ["scope", "status"],
)
DELIVERY_LATENCY = Histogram(
    "smbc_delivery_latency_seconds",
    "From a delivery's arrival to the end of its processing (done, skipped or failed)",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900, 3600, 4 * 3600, 24 * 3600),
)
REMOTE_CALLS = Counter(
    "smbc_remote_calls_total",
    "Attempts of calls to BigCommerce and SALESmanago, by service and outcome",
    ["service", "outcome"],
)
REMOTE_CALL_DURATION = Histogram(
    "smbc_remote_call_duration_seconds",
    "Duration of one attempt of a call to BigCommerce or SALESmanago",
    ["service"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30),
)
QUEUE_ROWS_FINISHED = Counter(
    "smbc_queue_rows_finished_total",
    "Queued rows (deliveries, consent write-backs, ...) a worker finished, by queue and status",
    ["queue", "status"],
)
STORE_PAUSES = Counter("smbc_store_pauses_total", "Stores whose sync was paused, by reason", ["reason"])

# Statuses after which a delivery needs nothing more: its latency is final.
FINAL_STATUSES = frozenset({"done", "skipped", "failed"})


def record_delivery_processed(scope: str, status: str, received_at: datetime, finished_at: datetime) -> None:
    """One inbox row worked on; its latency (arrival to the end) once nothing more will happen to it."""
    DELIVERIES_PROCESSED.labels(scope, status).inc()
    if status in FINAL_STATUSES:
        DELIVERY_LATENCY.observe(max((finished_at - received_at).total_seconds(), 0.0))


def record_remote_call(service: str, outcome: str, duration_ms: int) -> None:
    REMOTE_CALLS.labels(service, outcome).inc()
    REMOTE_CALL_DURATION.labels(service).observe(duration_ms / 1000)


@dataclass(frozen=True)
class Gauge:
    """One gauge sample read at scrape time (from the database or the queue, not from a process)."""

    name: str
    help: str
    value: float
    labels: Mapping[str, str] = field(default_factory=dict)


def gauge_families(gauges: Iterable[Gauge]) -> list[Metric]:
    families: dict[str, GaugeMetricFamily] = {}
    for gauge in gauges:
        family = families.get(gauge.name)
        if family is None:
            family = GaugeMetricFamily(gauge.name, gauge.help, labels=list(gauge.labels))
            families[gauge.name] = family
        family.add_metric(list(gauge.labels.values()), gauge.value)
    return list(families.values())


class _Fixed:
    """A collector that yields metric families computed before the scrape."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


class _ThisProcess:
    """The process's own registry (counters, and the process_* / python_* collectors)."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def multiprocess_dir() -> str:
    return os.environ.get(MULTIPROCESS_DIR_VARIABLE, "")


def exposition(gauges: Iterable[Gauge] = ()) -> bytes:
    """The text a scrape answers: every process's counters (all of this host's processes when
    `PROMETHEUS_MULTIPROC_DIR` is set, else this one's) and the gauges read for this scrape."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())  # type: ignore[arg-type]
    registry.register(_Fixed(gauge_families(gauges)))  # type: ignore[arg-type]
    return generate_latest(registry)
