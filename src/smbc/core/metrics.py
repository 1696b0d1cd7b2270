"""Prometheus counters shared by the web process and workers (served at /metrics)."""

from __future__ import annotations

from prometheus_client import Counter

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
