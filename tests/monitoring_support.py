"""The whole product against the sandbox for the monitoring tests: the app on its own server, the
sandbox store installed through the fake's OAuth, set up (channels and sites read from the fake),
connected to the fake SALESmanago's NORMAL account, and a dashboard session for the owner."""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from smbc.core.config import Settings
from smbc.core.http_server import BackgroundServer, free_port
from smbc.db.models import Store, StoreUser
from smbc.db.session import Database
from smbc.sandbox import Sandbox
from smbc.stores.access import DashboardSession
from smbc.web.app import create_app
from smbc.web.session import mint_session_token
from support import make_settings

TAB = "/app/tabs/monitoring"
API_KEY = "monitoring-tests-api-key"


@dataclass
class MonitoringEnv:
    sb: Sandbox
    app: FastAPI
    url: str
    store_hash: str
    store_id: int
    token: str

    @property
    def client_id(self) -> str:
        return self.sb.sm.NORMAL.client_id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def tab(self) -> httpx.Response:
        return httpx.get(self.url + TAB, headers=self.headers, timeout=30)

    def save(self, **fields: Any) -> httpx.Response:
        """Post the tab's form; fields as the form names them, lists for repeated fields."""
        form: list[tuple[str, str]] = []
        for name, value in fields.items():
            for item in value if isinstance(value, list) else [value]:
                form.append((name, str(item)))
        return httpx.post(self.url + TAB, headers=self.headers, data=dict_or_pairs(form), timeout=30)

    def restore(self) -> httpx.Response:
        return httpx.post(self.url + TAB + "/restore", headers=self.headers, timeout=30)

    def scripts(self) -> dict[int, Any]:
        """The app's scripts on the fake store, by channel (as BigCommerce holds them)."""
        with self.sb.bc.lock:
            mine = [
                s
                for s in self.sb.bc.store(self.store_hash).scripts.values()
                if s.client_id == self.sb.client_id
            ]
        by_channel: dict[int, Any] = {}
        for script in mine:
            assert script.channel_id not in by_channel, "two scripts of ours on one channel"
            by_channel[script.channel_id] = script
        return by_channel

    def storefront_url(self, channel_id: int) -> str:
        return self.sb.bc.storefront_url(self.store_hash, channel_id) + "/"


def dict_or_pairs(pairs: list[tuple[str, str]]) -> Any:
    """httpx takes repeated form fields as {name: [values]}."""
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


def defaults() -> dict[str, Any]:
    """The form as the tab shows it for a new store: [1] on, all storefronts, analytics."""
    return {
        "monitoring_enabled": "true",
        "monitoring_channels_mode": "all",
        "monitoring_consent_category": "analytics",
    }


@contextmanager
def monitoring_env(
    base: Settings, tmp_path: Path, *, workers: bool = False, host: str = "127.0.0.1"
) -> Iterator[MonitoringEnv]:
    app_port = free_port(host)
    app_url = f"http://{host}:{app_port}"
    with Sandbox(app_url=app_url) as sb:
        settings = make_settings(
            tmp_path,
            database_url=base.database_url,
            queue_url=base.queue_url,
            app_url=app_url,
            **sb.app_settings(),
        )
        if not settings.is_sqlite:
            Database(settings.database_url).upgrade()
        # Huey's own consumer installs signal handlers, which only the main thread may do: with
        # `workers`, a plain thread runs what the app queues instead.
        app = create_app(settings, start_workers=False)
        with BackgroundServer(app, host=host, port=app_port):
            store_hash = sb.bc.default_store_hash
            installed = sb.bc.install(store_hash)
            assert installed.status_code == 200, installed.text
            store_id, token = _set_up(app, sb, store_hash)
            from smbc.core import jobs

            jobs.huey.flush()  # the set-up the install queued has just been run here
            with QueueWorker(enabled=workers):
                yield MonitoringEnv(sb, app, app_url, store_hash, store_id, token)


class QueueWorker:
    """Runs the tasks the app puts on the queue, one at a time, on a background thread."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-queue-worker", daemon=True)

    def _run(self) -> None:
        from smbc.core import jobs

        jobs.import_tasks()
        storage = jobs.huey.storage
        # Only this test's queue: the next test points the process-wide Huey at its own storage.
        while not self._stop.is_set() and jobs.huey.storage is storage:
            task = jobs.huey.dequeue()
            if task is None:
                self._stop.wait(0.05)
                continue
            with contextlib.suppress(Exception):  # a failing task is the app's business (recorded)
                jobs.huey.execute(task)

    def __enter__(self) -> QueueWorker:
        if self.enabled:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            self._stop.set()
            self._thread.join(timeout=60)
            assert not self._thread.is_alive(), "a queued task did not finish within 60 s"


def _set_up(app: FastAPI, sb: Sandbox, store_hash: str) -> tuple[int, str]:
    from smbc.stores.setup import run_store_setup

    db = app.state.runtime.db
    with db.session() as s:
        store = s.scalar(select(Store).where(Store.hash == store_hash))
        assert store is not None
        store_id = store.id
    assert run_store_setup(store_id), "store set-up against the fake failed"
    connect_account(app, sb, store_id)
    with db.session() as s:
        owner = s.scalar(select(StoreUser).where(StoreUser.store_id == store_id, StoreUser.role == "owner"))
        assert owner is not None
        session = DashboardSession(
            store_hash=store_hash,
            user_id=owner.user_id,
            bc_user_id=owner.user.bc_user_id,
            role="owner",
            email=owner.user.email,
        )
    return store_id, mint_session_token(session, app.state.settings.secret_keys)


def connect_account(app: FastAPI, sb: Sandbox, store_id: int) -> None:
    """The store connected to the fake SALESmanago's NORMAL account, as a login leaves it."""
    from smbc.account.models import SalesmanagoAccount

    account = sb.sm.NORMAL
    with app.state.runtime.db.session() as s:
        s.add(
            SalesmanagoAccount(
                store_id=store_id,
                endpoint=sb.sm_url,
                client_id=account.client_id,
                api_key=API_KEY,
                sha=hashlib.sha1(  # noqa: S324 - SALESmanago's v2 auth is sha1
                    (API_KEY + account.client_id + account.api_secret).encode()
                ).hexdigest(),
                smapp=str(account.smapp),
                login_email=account.email,
                owners=list(account.owners),
                auth_mode="login",
            )
        )
