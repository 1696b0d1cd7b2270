"""The whole product against both fakes, for the real-time end-to-end suites.

The app runs on a BackgroundServer (webhook receiver), a Huey consumer with quick polling does the
work, the store is installed through the fake's OAuth flow (the set-up job registers the webhooks),
and the store logs in to the fake SALESmanago like a merchant would."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from huey.consumer import Consumer
from huey.storage import RedisStorage
from sqlalchemy import or_, select

from smbc.core import jobs
from smbc.core.clock import Clock, FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.http_server import BackgroundServer, free_port
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.context import RowStatus
from smbc.engine.pausing import resume_store
from smbc.realtime import processing as realtime
from smbc.realtime.models import WebhookDelivery
from smbc.sandbox.runner import Sandbox
from smbc.stores.setup import run_store_setup
from smbc.web.app import create_app
from support import settings_in_environment, wait_for

UNFINISHED = (RowStatus.PENDING.value, RowStatus.PROCESSING.value)


class RealtimeEnv:
    def __init__(self, settings: Settings, clock: FakeClock | None = None) -> None:
        self.clock = clock or FakeClock()
        self._base_settings = settings
        self._previous_clock: Clock | None = None

    # -- life cycle ------------------------------------------------------------------------------

    def __enter__(self) -> RealtimeEnv:
        self._previous_clock = set_clock(self.clock)
        self.consumer: Consumer | None = None
        self.server: BackgroundServer | None = None
        self.sb: Sandbox | None = None
        try:
            self._start()
        except BaseException:
            self.__exit__()  # nothing may keep running (a stray consumer would eat other tests' tasks)
            raise
        return self

    def _start(self) -> None:
        port = free_port()
        self.app_url = f"http://127.0.0.1:{port}"
        self.sb = Sandbox(app_url=self.app_url).start()
        self.bc = self.sb.bc
        self.sm = self.sb.sm
        self.bc.webhooks.retry_time_scale = 0.001
        self.settings = self._base_settings.model_copy(
            update={**self.sb.app_settings(), "app_url": self.app_url}
        )
        if not self.settings.is_sqlite:  # the app migrates SQLite itself; PostgreSQL is `smbc db upgrade`
            migrator = Database(self.settings.database_url)
            migrator.upgrade()
            migrator.dispose()
        self.server = BackgroundServer(create_app(self.settings, start_workers=False), port=port).start()
        self.db = get_runtime().db
        if self.settings.queue_url.startswith("redis"):
            # A queue of our own: other test processes on this Redis must not take our tasks.
            jobs.huey.storage = RedisStorage(
                name=f"smbc-test-{uuid.uuid4().hex[:8]}", url=self.settings.queue_url
            )
        jobs.huey.flush()
        jobs.import_tasks()
        self.consumer = jobs.huey.create_consumer(
            workers=3,
            worker_type="thread",
            periodic=False,
            initial_delay=0.01,
            backoff=1.0,
            max_delay=0.05,
            check_worker_health=False,
        )
        self.consumer.start()
        self.store_hash = self.bc.default_store_hash
        self.install()

    def __exit__(self, *exc: object) -> None:
        try:
            if self.consumer is not None:
                self.consumer.stop(graceful=True)
        finally:
            if self.server is not None:
                self.server.stop()
            if self.sb is not None:
                self.sb.stop()
            if self._previous_clock is not None:
                set_clock(self._previous_clock)

    def install(self) -> None:
        answer = self.bc.install(self.store_hash)
        assert answer.status_code < 400, answer.text
        try:
            wait_for(self._set_up, "store set-up and webhook registration", timeout=10)
        except AssertionError:  # the set-up task was lost: what the periodic set-up sweep does
            run_store_setup(self.store_id)
            wait_for(self._set_up, "store set-up and webhook registration", timeout=20)
        self.login()

    def _set_up(self) -> bool:
        with self.db.session() as s:
            store = s.scalars(select(Store).where(Store.hash == self.store_hash)).first()
            return bool(store and store.setup_completed_at) and len(self.bc.store(self.store_hash).hooks) > 0

    def login(self) -> None:
        from smbc.account.login import login_with_password

        login_with_password(
            self.db,
            self.store_id,
            email=self.sm.NORMAL.email,
            password=self.sm.PASSWORD,
            endpoint=self.sb.sm_url,
            settings=self.settings,
            actor="test",
        )
        resume_store(self.store_id, db=self.db)

    # -- the store -------------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """A row of the current session's scope: use inside `with env.db.session() as s` via s.merge."""
        with self.db.session() as s:
            store = s.scalars(select(Store).where(Store.hash == self.store_hash)).one()
            s.expunge(store)
        return store

    @property
    def store_id(self) -> int:
        return self.store.id

    def configure(self, **changes: object) -> None:
        from smbc.settings.store_settings import save_store_settings

        with self.db.session() as s:
            save_store_settings(s, self.store_id, dict(changes), "test")

    @property
    def storefront(self) -> Any:
        return self.bc.storefront(self.store_hash, channel_id=1)

    @property
    def admin(self) -> Any:
        return self.bc.admin(self.store_hash)

    # -- waiting and looking ---------------------------------------------------------------------

    def settle(self, timeout: float = 20.0) -> None:
        """Every webhook delivered and every due delivery worked on."""
        assert self.bc.webhooks.flush(timeout), "fake BigCommerce did not deliver its webhooks"

        def quiet() -> bool:
            now = self.clock.now()
            with self.db.session() as s:
                rows = s.execute(
                    select(WebhookDelivery.status, WebhookDelivery.next_attempt_at).where(
                        WebhookDelivery.status.in_(UNFINISHED)
                    )
                ).all()
            due = [
                r
                for r in rows
                if r.status == "processing" or r.next_attempt_at is None or r.next_attempt_at <= now
            ]
            return not due and jobs.huey.pending_count() == 0

        last_nudge = [time.monotonic()]

        def quiet_or_nudge() -> bool:
            if quiet():
                return True
            if time.monotonic() - last_nudge[0] > 1.0:
                # What the periodic sweep does for rows whose queue message was lost (another test
                # process sharing the Redis database can take it): queue due rows again.
                last_nudge[0] = time.monotonic()
                now = self.clock.now()
                with self.db.session() as s:
                    ids = s.scalars(
                        select(WebhookDelivery.id).where(
                            WebhookDelivery.status == RowStatus.PENDING.value,
                            or_(
                                WebhookDelivery.next_attempt_at.is_(None),
                                WebhookDelivery.next_attempt_at <= now,
                            ),
                        )
                    ).all()
                for delivery_id in ids:
                    realtime.enqueue_delivery(delivery_id)
            return False

        try:
            wait_for(quiet_or_nudge, "deliveries to be processed", timeout=timeout)
        except AssertionError:
            rows = [(d.id, d.scope, d.status, d.attempts, d.reason, d.last_error) for d in self.deliveries()]
            raise AssertionError(f"not settled; queue={jobs.huey.pending_count()} rows={rows}") from None

    def retry_due(self, advance_s: float) -> int:
        """Move time on and let the periodic sweep re-queue what became due."""
        self.clock.advance(advance_s)
        count = realtime.sweep_due(self.db, self.clock.now())
        self.settle()
        return count

    def deliveries(self, scope: str | None = None) -> list[WebhookDelivery]:
        with self.db.session() as s:
            query = select(WebhookDelivery).order_by(WebhookDelivery.id)
            if scope:
                query = query.where(WebhookDelivery.scope == scope)
            return list(s.scalars(query).all())

    @property
    def client_id(self) -> str:
        return self.sm.NORMAL.client_id

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return self.sm.events(self.client_id, type=kind)

    def contact(self, email: str) -> dict[str, Any] | None:
        return self.sm.contact(self.client_id, email)


@contextmanager
def realtime_env_for_cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[RealtimeEnv]:
    """A `RealtimeEnv` whose settings are in the process's environment, where `smbc` commands read them."""
    with RealtimeEnv(settings) as environment, settings_in_environment(environment.settings, monkeypatch):
        yield environment
