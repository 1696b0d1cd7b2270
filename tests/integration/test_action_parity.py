"""The CLI and the dashboard have the same effects: each action runs once through `smbc` (the real
command, a separate process) and once through the dashboard (HTTP with a signed session), each on a
fresh store of its own (the sandbox store installed, set up and, unless the action is a login,
connected to SALESmanago). Then what each side's fakes saw and what each database holds are compared:

- SALESmanago: every request the fake received (method, path, status, body; times and secrets out);
- BigCommerce: every change the app made (non-GET calls, as recorded) and the app's scripts the fake
  holds (reads differ on purpose: a tab re-reads what it shows);
- the database: every row of every table (ids kept: both databases start the same; times, actors and
  secrets' values out; the call records are the BigCommerce/SALESmanago comparison above).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from monitoring_support import MonitoringEnv, monitoring_env
from smbc.account.models import SalesmanagoAccount
from smbc.core import jobs
from smbc.core.remote_calls import RemoteCall
from smbc.db.base import Base
from smbc.engine.ledgers import SentEvent
from smbc.export import service as export_service
from smbc.export.models import Export
from smbc.monitoring.scripts import sync_store
from smbc.realtime import inbox
from smbc.realtime.models import WebhookDelivery
from smbc.reconcile.models import ReconcileState
from smbc.settings.store_settings import save_store_settings
from support import make_settings

pytestmark = pytest.mark.subprocess

FEB = ("2026-02-01", "2026-02-28")
# Values that differ between two runs of the same action: when, who (the CLI's user or the
# dashboard's e-mail), a hash of code naming the app's port, a key named after the time, and random
# secrets (compared as set or not).
VOLATILE = {"time", "requestTime", "date", "actor", "heartbeat_at", "lease_owner", "keyName", "content_hash"}
SECRETS = {"callback_secret", "v3_key", "access_token", "webhook_secret", "api_key", "sha", "token", "apiKey"}
LOCAL_ORIGIN = re.compile(r"(127\.0\.0\.1|localhost):\d+")
TOKEN_IN_URL = re.compile(r"token=[^&\s\"']+")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)?")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Action:
    """One user action: the command's arguments after `smbc`, the dashboard's request, what makes
    the store ready for it, and its effect (checked on what one side saw: both did nothing is no
    parity worth having)."""

    cli: Callable[[MonitoringEnv], list[str]]
    web: Callable[[MonitoringEnv], httpx.Response]
    effect: Callable[[dict[str, Any]], bool]
    prepare: Callable[[MonitoringEnv], None] = lambda env: None


# -- preparing a store -------------------------------------------------------------------------


def _disconnected(env: MonitoringEnv) -> None:
    with env.app.state.runtime.db.session() as s:
        s.execute(SalesmanagoAccount.__table__.delete())


def _with_orders(env: MonitoringEnv) -> None:
    env.sb.bc.seed(env.store_hash, customers=3, orders=5, start=date(2026, 2, 2), end=date(2026, 2, 20))


def _with_queued_export(env: MonitoringEnv) -> None:
    _with_orders(env)
    first, last = (date.fromisoformat(d) for d in FEB)
    db = env.app.state.runtime.db
    export_service.start_export(db, env.store_id, "events", first, last, actor="tests", enqueue=False)


def _with_unconfirmed_export(env: MonitoringEnv) -> None:
    """An events export that ran, with its last event unconfirmed (the worker died waiting for it)."""
    _with_queued_export(env)
    db = env.app.state.runtime.db
    drain_queue()
    from smbc.export.runner import run_export

    run_export(1, db=db, time_slice=None)
    with db.session() as s:
        last = s.scalars(select(SentEvent).order_by(SentEvent.order_id.desc())).first()
        assert last is not None and s.get(Export, 1).status == "done"
        last.state = "unconfirmed"
        s.get(Export, 1).unconfirmed = 1


def _with_monitoring_deleted_on_one_storefront(env: MonitoringEnv) -> None:
    db, app_url = env.app.state.runtime.db, env.app.state.settings.app_url
    assert sync_store(db, env.store_id, app_url=app_url).ok
    with env.sb.bc.lock:
        scripts = env.sb.bc.store(env.store_hash).scripts
        gone = next(uuid for uuid, script in scripts.items() if script.channel_id == 1)
        del scripts[gone]


def _with_failed_delivery(env: MonitoringEnv) -> None:
    _with_orders(env)
    db = env.app.state.runtime.db
    scope, data = "store/customer/created", {"type": "customer", "id": 1}
    delivery_id = inbox.record_synthetic(
        db, env.store_id, scope, data, created_at=1_770_000_000, source="webhook"
    )
    with db.session() as s:
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(status="failed", reason="refused", last_error="SALESmanago answered HTTP 400", attempts=1)
        )


PURCHASE_STATUSES = (2, 3, 8, 9, 10, 11)  # the default `purchase_statuses`


def _with_unconfirmed_delivery(env: MonitoringEnv) -> None:
    """A PURCHASE delivery done with its event unconfirmed (its send timed out), SALESmanago lacking it."""
    _with_orders(env)
    db = env.app.state.runtime.db
    orders = env.sb.bc.store(env.store_hash).orders
    order_id = min(i for i, o in orders.items() if o.status_id in PURCHASE_STATUSES)
    scope, data = "store/order/created", {"type": "order", "id": order_id}
    delivery_id = inbox.record_synthetic(
        db, env.store_id, scope, data, created_at=1_770_000_000, source="webhook"
    )
    with db.session() as s:
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(status="done", reason=f"PURCHASE for {order_id} unconfirmed", attempts=1)
        )
        s.add(
            SentEvent(
                store_id=env.store_id,
                kind="PURCHASE",
                key=str(order_id),
                order_id=order_id,
                state="unconfirmed",
                claimed_by=f"delivery:{delivery_id}",
            )
        )


# -- the actions ---------------------------------------------------------------------------------


def _post(path: str, data: dict[str, Any] | None = None) -> Callable[[MonitoringEnv], httpx.Response]:
    def send(env: MonitoringEnv) -> httpx.Response:
        return httpx.post(env.url + path, headers=env.headers, data=data or {}, timeout=60)

    return send


def _store(*args: str) -> Callable[[MonitoringEnv], list[str]]:
    return lambda env: [*args, "--store", env.store_hash]


def _credentials(env: MonitoringEnv) -> dict[str, str]:
    account = env.sb.sm.NORMAL
    return {
        "endpoint": env.sb.sm_url,
        "client_id": account.client_id,
        "api_secret": account.api_secret,
        "owner": account.email,
    }


def _rows(table: str) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    return lambda seen: seen["database"][table]


def _sm_paths(seen: dict[str, Any]) -> set[str]:
    return {call["path"] for call in seen["salesmanago"]}


ACTIONS: dict[str, Action] = {
    "login with password": Action(
        cli=lambda env: [
            *("sm", "login", "--store", env.store_hash),
            *("--email", env.sb.sm.NORMAL.email, "--password", env.sb.sm.PASSWORD),
        ],
        web=lambda env: _post(
            "/app/account/login", {"email": env.sb.sm.NORMAL.email, "password": env.sb.sm.PASSWORD}
        )(env),
        effect=lambda seen: (
            len(_rows("salesmanago_accounts")(seen)) == 1 and bool(seen["bigcommerce scripts"])
        ),
        prepare=_disconnected,
    ),
    "login with API credentials": Action(
        cli=lambda env: [
            *("sm", "login", "--store", env.store_hash),
            *(f"--{k.replace('_', '-')}={v}" for k, v in _credentials(env).items()),
        ],
        web=lambda env: _post("/app/account/login-credentials", _credentials(env))(env),
        effect=lambda seen: (
            len(_rows("salesmanago_accounts")(seen)) == 1 and bool(seen["bigcommerce scripts"])
        ),
        prepare=_disconnected,
    ),
    "logout": Action(
        cli=_store("sm", "logout"),
        web=_post("/app/account/logout"),
        effect=lambda seen: _rows("salesmanago_accounts")(seen) == [],
    ),
    "rotate the callback token": Action(
        cli=_store("sm", "rotate-callback-token"),
        web=_post("/app/account/callback-token/rotate"),
        effect=lambda seen: any(r["key"] == "callback_token" for r in _rows("settings_changes")(seen)),
    ),
    "settings change": Action(
        cli=lambda env: [
            *("settings", "set", "--store", env.store_hash),
            *("monitoring.enabled=true", "monitoring.channels=2", "monitoring.consent_category=targeting"),
        ],
        web=_post(
            "/app/tabs/monitoring",
            {
                "monitoring_enabled": "true",
                "monitoring_channels_mode": "selected",
                "monitoring_channel": "2",
                "monitoring_consent_category": "targeting",
            },
        ),
        effect=lambda seen: (
            len(seen["bigcommerce scripts"]) == 1 and "targeting" in seen["bigcommerce scripts"][0]
        ),
    ),
    "export start": Action(
        cli=lambda env: ["export", "events", "--store", env.store_hash, "--from", FEB[0], "--to", FEB[1]],
        web=_post("/app/export/events", {"date_from": FEB[0], "date_to": FEB[1]}),
        effect=lambda seen: (
            [r["status"] for r in _rows("exports")(seen)] == ["done"] and bool(_sm_paths(seen))
        ),
        prepare=_with_orders,
    ),
    "export cancel": Action(
        cli=lambda env: ["export", "cancel", "--store", env.store_hash, "1"],
        web=_post("/app/export/1/cancel"),
        effect=lambda seen: [r["status"] for r in _rows("exports")(seen)] == ["cancelled"],
        prepare=_with_queued_export,
    ),
    "export resend unconfirmed": Action(
        cli=lambda env: ["export", "resend", "--store", env.store_hash, "1"],
        web=_post("/app/export/1/resend-unconfirmed"),
        effect=lambda seen: (
            [r["status"] for r in _rows("exports")(seen)] == ["done", "done"] and bool(_sm_paths(seen))
        ),
        prepare=_with_unconfirmed_export,
    ),
    "monitoring restore": Action(
        cli=_store("monitoring", "restore"),
        web=_post("/app/tabs/monitoring/restore"),
        effect=lambda seen: len(seen["bigcommerce scripts"]) == 2 and bool(seen["bigcommerce changes"]),
        prepare=_with_monitoring_deleted_on_one_storefront,
    ),
    "delivery retry": Action(
        cli=lambda env: ["deliveries", "retry", "--store", env.store_hash, "1"],
        web=_post("/app/activity/deliveries/1/retry"),
        effect=lambda seen: (
            [r["status"] for r in _rows("webhook_deliveries")(seen)] == ["done"] and bool(_sm_paths(seen))
        ),
        prepare=_with_failed_delivery,
    ),
    "delivery resend unconfirmed": Action(
        cli=lambda env: ["deliveries", "resend", "--store", env.store_hash, "1"],
        web=_post("/app/activity/deliveries/1/resend"),
        effect=lambda seen: (
            [r["state"] for r in _rows("sent_events")(seen)] == ["sent"]
            and "/api/integration/upsert" in _sm_paths(seen)
        ),
        prepare=_with_unconfirmed_delivery,
    ),
}


# -- running one side ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ACTIONS))
def test_the_cli_and_the_dashboard_have_the_same_effects(name: str, tmp_path: Path) -> None:
    action = ACTIONS[name]
    with _side(tmp_path / "cli", action) as env:
        done = subprocess.run(
            [sys.executable, "-m", "smbc", *action.cli(env)],
            cwd=env.app.state.settings.var_dir,
            env=_command_env(env),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        by_cli = _observe(env)
    with _side(tmp_path / "web", action) as env:
        answer = action.web(env)
        assert answer.status_code == 200, answer.text
        by_web = _observe(env)

    for seen in ("salesmanago", "bigcommerce changes", "bigcommerce scripts"):
        assert by_cli[seen] == by_web[seen], seen
    for table, rows in by_cli["database"].items():
        assert rows == by_web["database"][table], _difference(table, rows, by_web["database"][table])
    assert action.effect(by_cli), f"{name}: no effect seen"


@contextmanager
def _side(directory: Path, action: Action) -> Iterator[MonitoringEnv]:
    directory.mkdir()
    with monitoring_env(make_settings(directory), directory) as env:
        with env.app.state.runtime.db.session() as s:
            # The default locations hash each storefront's URL, whose port differs between the sides.
            save_store_settings(s, env.store_id, {"location.1": "MAIN_SHOP", "location.2": "OUTLET"}, "tests")
        action.prepare(env)
        drain_queue()
        env.sb.sm.state.calls.clear()
        with env.app.state.runtime.db.session() as s:
            s.execute(RemoteCall.__table__.delete())
        yield env


def drain_queue() -> None:
    """Run every task on the queue here, including those the tasks queue (as a worker would)."""
    jobs.import_tasks()
    while (task := jobs.huey.dequeue()) is not None:
        jobs.huey.execute(task)


def _command_env(env: MonitoringEnv) -> dict[str, str]:
    """The app's settings as the `SMBC_*` variables a command reads."""
    settings = env.app.state.settings
    variables = {k: v for k, v in os.environ.items() if not k.startswith("SMBC_")}
    variables["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    for name in ("database_url", "queue_url", "secret_key", "var_dir", "app_url", *env.sb.app_settings()):
        variables["SMBC_" + name.upper()] = str(getattr(settings, name))
    return variables


# -- what each side saw --------------------------------------------------------------------------


def _observe(env: MonitoringEnv) -> dict[str, Any]:
    drain_queue()
    with env.sb.sm.state.lock:
        sm_calls = [
            _normalized({k: call[k] for k in ("method", "path", "status", "body")})
            for call in env.sb.sm.state.calls
        ]
    db = env.app.state.runtime.db
    with db.session() as s:
        bc_changes = sorted(
            _normalized((c.method, c.endpoint, c.outcome, c.status))
            for c in s.scalars(select(RemoteCall).where(RemoteCall.service == "bigcommerce"))
            if c.method != "GET"
        )
        tables = {
            table.name: sorted(
                (_normalized(dict(row._mapping)) for row in s.execute(select(table))), key=repr
            )
            for table in Base.metadata.sorted_tables
            if table.name not in (RemoteCall.__tablename__, ReconcileState.__tablename__)
        }
    scripts = sorted(
        repr(_normalized({k: v for k, v in asdict(script).items() if k not in ("uuid", "id")}))
        for script in env.scripts().values()
    )
    return {
        "salesmanago": sm_calls,
        "bigcommerce changes": bc_changes,
        "bigcommerce scripts": scripts,
        "database": tables,
    }


def _normalized(value: Any, key: str = "") -> Any:
    if key in SECRETS:
        return value is not None and value != ""
    if isinstance(value, datetime | date) or key.endswith(("_at", "At")):
        return "<time>" if value else value
    if isinstance(value, dict):
        return {k: _normalized(v, str(k)) for k, v in sorted(value.items(), key=str) if k not in VOLATILE}
    if isinstance(value, list | tuple):
        return [_normalized(v) for v in value]
    if isinstance(value, str):
        text = TIMESTAMP.sub("<time>", LOCAL_ORIGIN.sub("<host>", value))
        return UUID.sub("<uuid>", TOKEN_IN_URL.sub("token=<token>", text))
    return value


def _difference(table: str, by_cli: list[dict[str, Any]], by_web: list[dict[str, Any]]) -> str:
    """The columns that differ, row by row (for the failure message)."""
    if len(by_cli) != len(by_web):
        return f"{table}: {len(by_cli)} rows by the CLI, {len(by_web)} by the dashboard"
    lines = [
        f"{table} row {i} {key}: CLI {a.get(key)!r} / dashboard {b.get(key)!r}"
        for i, (a, b) in enumerate(zip(by_cli, by_web, strict=True))
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key)
    ]
    return "\n".join(lines)
