"""The app as in production, for the fault drills: PostgreSQL, Redis, two `smbc serve` processes behind
a small balancer, `smbc worker` processes, and the sandbox's fakes in the test process.

    with Cluster(tmp_path, postgres_url, redis_url) as c:
        c.start_worker(); c.start_worker()
        orders = c.burst(100)                     # shoppers check out: webhooks reach both web processes
        c.kill(c.workers[0])                      # kill -9
        c.wait_for_purchases(orders, timeout=120)

The balancer stands where a load balancer would: deliveries go round-robin to the web processes, or,
with `mirror = True`, each one to every web process at once (BigCommerce sending one twice)."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from smbc.actions.account import login_with_password
from smbc.core.config import Settings
from smbc.core.http_server import BackgroundServer, free_port
from smbc.core.remote_calls import RemoteCall
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.ledgers import SentEvent
from smbc.realtime.models import WebhookDelivery
from smbc.sandbox import Sandbox
from support import make_settings, wait_for

SRC = Path(__file__).resolve().parents[2] / "src"
UNFINISHED = ("pending", "processing")
# Short, so a drill waits seconds, not minutes, for a dead worker's lease to run out.
DRILL_LEASE_SECONDS = 3.0
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection"}


class Balancer:
    """An ASGI reverse proxy in front of the web processes."""

    def __init__(self) -> None:
        self.backends: list[str] = []
        self.mirror = False  # every webhook delivery to every web process at once
        # What the sender got for each webhook delivery: (monotonic time, status, Retry-After header).
        self.webhook_answers: list[tuple[float, int, str | None]] = []
        self._turn = itertools.count()
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self._client = httpx.AsyncClient(timeout=30)
                    await send({"type": "lifespan.startup.complete"})
                else:
                    assert self._client is not None
                    await self._client.aclose()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        request = Request(scope, receive)
        body = await request.body()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if self.mirror and path.startswith("/webhooks/"):
            targets = list(self.backends)
        else:
            targets = [self.backends[next(self._turn) % len(self.backends)]]
        assert self._client is not None
        client = self._client

        async def forward(backend: str) -> Response:
            try:
                answer = await client.request(
                    request.method, f"{backend}{path}", content=body, headers=headers
                )
            except httpx.HTTPError as exc:  # a web process stopped (the drill's end): as a balancer would
                return Response(f"backend unreachable: {exc}", status_code=502)
            kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
            return Response(answer.content, status_code=answer.status_code, headers=kept)

        answers = await asyncio.gather(*(forward(backend) for backend in targets))
        worst = max(answers, key=lambda a: a.status_code)  # BigCommerce would retry it
        if path.startswith("/webhooks/"):
            retry_after = worst.headers.get("retry-after")
            self.webhook_answers.append((time.monotonic(), worst.status_code, retry_after))
        await worst(scope, receive, send)


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class Cluster:
    def __init__(self, tmp_path: Path, database_url: str, queue_url: str, *, webs: int = 2) -> None:
        self.tmp_path = tmp_path
        self.database_url = database_url
        self.queue_url = queue_url
        self.balancer = Balancer()
        self.front = BackgroundServer(self.balancer)
        self.sb = Sandbox(app_url=self.front.url)
        self.web_ports = [free_port() for _ in range(webs)]
        self.webs: list[subprocess.Popen[bytes]] = []
        self.workers: list[subprocess.Popen[bytes]] = []
        self.db: Database | None = None
        self._order_turn = itertools.count(1)

    # -- processes ---------------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        self.front.start()
        self.sb.start()
        # BigCommerce's retry ladder (a minute, then longer) a hundred times faster: a delivery refused
        # while a part was down comes back within the drill.
        self.sb.bc.webhooks.retry_time_scale = 0.01
        try:
            self.settings: Settings = make_settings(
                self.tmp_path,
                database_url=self.database_url,
                queue_url=self.queue_url,
                queue_name=f"drill{uuid.uuid4().hex[:10]}",
                workers="external",
                app_url=self.front.url,
                lease_seconds=DRILL_LEASE_SECONDS,
                **self.sb.app_settings(),
            )
            self.db = init_runtime(self.settings, migrate=False).db
            self.env = {
                **os.environ,
                **self.settings.environment(),
                "PYTHONPATH": str(SRC),
                "SMBC_LOG_LEVEL": "WARNING",
            }
            for port in self.web_ports:
                self.webs.append(self._spawn(f"web{port}", "serve", "--port", str(port)))
            self.balancer.backends = [f"http://127.0.0.1:{port}" for port in self.web_ports]
            for url in self.balancer.backends:
                wait_for(lambda url=url: answers(url), f"smbc serve at {url} to answer", timeout=60)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.tmp_path / f"{name}.log").open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "smbc", *args], env=self.env, cwd=self.tmp_path, stdout=log, stderr=log
        )

    def start_worker(self, threads: int = 2) -> subprocess.Popen[bytes]:
        worker = self._spawn(f"worker{len(self.workers) + 1}", "worker", "--threads", str(threads))
        self.workers.append(worker)
        return worker

    @staticmethod
    def kill(process: subprocess.Popen[bytes]) -> None:
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL

    def __exit__(self, *exc: object) -> None:
        processes = [p for p in self.webs + self.workers if p.poll() is None]
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.sb.stop()
        self.front.stop()
        close_runtime()

    # -- the store and the shoppers ----------------------------------------------------------------

    @property
    def store_hash(self) -> str:
        return self.sb.bc.default_store_hash

    def install(self, store_hash: str | None = None, *, timeout: float = 60) -> int:
        """Install a store (the sandbox's default one unless named; a worker sets it up) and connect it
        to the sandbox's SALESmanago account."""
        assert self.db is not None
        store_hash = store_hash or self.store_hash
        assert self.sb.bc.install(store_hash).status_code < 400

        def set_up() -> int | None:
            with self.db.session() as s:  # type: ignore[union-attr]
                store = s.scalar(select(Store).where(Store.hash == store_hash))
                return store.id if store is not None and store.setup_completed_at else None

        store_id = wait_for(set_up, f"a worker to set store {store_hash} up", timeout=timeout)
        login_with_password(
            self.db,
            store_hash,
            email=self.sb.sm.NORMAL.email,
            password=self.sb.sm.PASSWORD,
            endpoint=self.sb.sm_url,
            settings=self.settings,
            actor="drill",
        )
        return store_id

    def burst(self, orders: int) -> list[int]:
        """Guests check out `orders` carts, one after another (each fires its webhooks at once)."""
        storefront = self.sb.bc.storefront(self.store_hash, channel_id=1)
        placed = []
        for _ in range(orders):
            n = next(self._order_turn)
            cart = storefront.add_to_cart(product_id=77, quantity=1)
            placed.append(storefront.checkout(cart["id"], guest_email=f"guest{n}@drill.example.com")["id"])
        return placed

    # -- what the fakes saw ------------------------------------------------------------------------

    def purchases(self) -> Counter[int]:
        """PURCHASE events the fake SALESmanago holds, by order id."""
        events = self.sb.sm.events(self.sb.sm.NORMAL.client_id, "PURCHASE")
        return Counter(int(e["externalId"]) for e in events)

    def unconfirmed_purchases(self) -> dict[int, str]:
        """Orders whose PURCHASE the ledger records unconfirmed (its send was interrupted in flight),
        with the work that sent it ("delivery:42")."""
        assert self.db is not None
        with self.db.session() as s:
            rows = s.execute(
                select(SentEvent.order_id, SentEvent.claimed_by).where(
                    SentEvent.kind == "PURCHASE", SentEvent.state == "unconfirmed"
                )
            )
            return {int(order_id): owner for order_id, owner in rows if order_id is not None}

    def wait_for_purchases(self, orders: list[int], *, timeout: float) -> None:
        wanted = set(orders)
        wait_for(
            lambda: wanted <= set(self.purchases()),
            lambda: f"PURCHASEs of {len(wanted - set(self.purchases()))} of {len(wanted)} orders",
            timeout=timeout,
            interval=0.2,
        )

    def unfinished(self) -> int:
        assert self.db is not None
        with self.db.session() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(WebhookDelivery)
                    .where(WebhookDelivery.status.in_(UNFINISHED))
                )
                or 0
            )

    def bigcommerce_answers(self, status: int) -> int:
        """How many times the fake BigCommerce answered `status` to the app (429: over the quota)."""
        assert self.db is not None
        with self.db.session() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(RemoteCall)
                    .where(RemoteCall.service == "bigcommerce", RemoteCall.status == status)
                )
                or 0
            )

    def ready(self) -> bool:
        """Every web process answers /readyz with 200 (database and queue reachable)."""
        for url in self.balancer.backends:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
        return True

    def log(self, name: str) -> str:
        path = self.tmp_path / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""
