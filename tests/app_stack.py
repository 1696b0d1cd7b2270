"""The real app (create_app in a BackgroundServer) wired to the sandbox (fake BigCommerce and fake
SALESmanago), as a context manager other integration suites can reuse:

    with AppStack(backend_settings) as stack:
        stack.sb.bc.install(stack.store_hash)
        stack.get("/app/tabs/account", token=stack.session_token(response.text))
"""

from __future__ import annotations

import re
import socket
from typing import Any

import httpx
from sqlalchemy import select

from smbc.core.config import Settings
from smbc.core.http_server import BackgroundServer
from smbc.core.remote_calls import RemoteCall
from smbc.core.runtime import Runtime, get_runtime
from smbc.db.base import Base
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.reconcile.models import ReconcileState
from smbc.sandbox import Sandbox
from smbc.web.app import create_app

CLIENT_ID = "integration-client-id"
CLIENT_SECRET = "integration-client-secret-0123456789abcdef"  # long enough for HS256


class AppStack:
    def __init__(self, settings: Settings, **sandbox_options: Any) -> None:
        # Hold the app's port while the sandbox picks its own, so they cannot collide.
        self._reservation = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._reservation.bind(("127.0.0.1", 0))
        self.port = self._reservation.getsockname()[1]
        self.app_url = f"http://127.0.0.1:{self.port}"
        self.sb = Sandbox(
            app_url=self.app_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, **sandbox_options
        )
        self._base_settings = settings
        self.server: BackgroundServer | None = None
        self.http = httpx.Client(base_url=self.app_url, timeout=30)

    def __enter__(self) -> AppStack:
        self.sb.start()
        self._reservation.close()
        try:
            self.settings = self._base_settings.model_copy(
                update={**self.sb.app_settings(), "app_url": self.app_url}
            )
            if not self.settings.is_sqlite:  # as `smbc db upgrade` before `smbc serve` in production
                database = Database(self.settings.database_url)
                database.upgrade()
                database.dispose()
            self.server = BackgroundServer(create_app(self.settings), port=self.port).start()
        except Exception:
            self.sb.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        try:
            if self.server is not None:
                self.server.stop()
        finally:
            # Never leave inline workers behind: they would follow the next test's queue and database.
            consumer = getattr(self.server.app.state, "consumer", None) if self.server else None
            if consumer is not None and not consumer.stop_flag.is_set():
                consumer.stop()
            self.sb.stop()

    @property
    def store_hash(self) -> str:
        return self.sb.bc.default_store_hash

    @property
    def runtime(self) -> Runtime:
        return get_runtime()

    def store(self, store_hash: str | None = None) -> Store | None:
        with self.runtime.db.session() as s:
            return s.scalar(select(Store).where(Store.hash == (store_hash or self.store_hash)))

    def snapshot(self) -> dict[str, list[tuple]]:
        """Every row of every table, to prove a refused request changed nothing. Left out: what the
        inline scheduler's reconciliation writes on its own (each minute a newly installed store is
        due), which a test straddling a minute would otherwise see as a change."""
        with self.runtime.db.session() as s:
            return {
                t.name: sorted(map(tuple, s.execute(_without_reconciliation(select(t), t)).all()), key=repr)
                for t in Base.metadata.sorted_tables
                if t.name != ReconcileState.__tablename__
            }

    def get(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.get(path, headers=headers, **kw)

    def post(self, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.post(path, headers=headers, **kw)

    @staticmethod
    def session_token(html: str) -> str:
        match = re.search(r'<meta name="smbc-session" content="([^"]+)"', html)
        assert match, "the page carries no session token"
        return match.group(1)


def _without_reconciliation(query: Any, table: Any) -> Any:
    if table.name == RemoteCall.__tablename__:
        return query.where(RemoteCall.context != "reconcile")
    return query
