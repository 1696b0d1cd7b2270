"""End-to-end real-time benchmark: mixed shopper activity on many sandbox stores, both fakes with
added latency; how long until SALESmanago has everything, how many calls and how much CPU each
delivery costs, and the worker's memory.

    python benchmarks/realtime_end_to_end.py [--deliveries 10000] [--stores 20] [--latency-ms 50]
        [--workers 16] [--database-url postgresql+psycopg://...] [--queue-url redis://...]
        [--rate 50 --duration 300] [--profile DIR [--profile-rate 50]]

Two modes. A burst (the default): `--deliveries` as fast as the fakes make them. Steady state
(`--rate`): activity paced at `--rate` deliveries a second for `--duration` seconds, to measure a
delivery's own latency (webhook to SALESmanago) rather than a queue draining.

CPU per delivery is the user + system time of the app's processes (`smbc serve` and `smbc worker`,
with any children) between the first delivery and the last one done, divided by the deliveries; the
fakes run in this process and are not counted. Each store is marked reconciled when installed, so
every delivery counted is a webhook's (a new store's first reconciliation reads the seeded data back
an hour; in a run it started at a minute's turn and added 500-1,500 deliveries of its own). The
worker's RSS is sampled every second.
`--profile DIR` attaches `py-spy` to both processes (collapsed stacks of the thread holding the
GIL, i.e. where Python spends CPU, in DIR).

Prints JSON. Activity per store, in rounds: a registration, a guest cart that gets an e-mail and
two changes, a checkout, and a status change of an earlier order. The activity comes as one burst,
so most guest carts are converted before a worker reads them: their deliveries are skipped ("cart no
longer exists") and the order's PURCHASE carries the sale, as it would after a real burst. The clock
is real; the webhook deliveries are real HTTP posts from the fake BigCommerce to the app.

The app runs as in production, apart from the fakes (which stay in this process): one `smbc serve`
process and one `smbc worker` process with `--workers` threads, configured by environment variables.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import create_engine, func, select, text

from smbc.core.config import Settings, load_settings
from smbc.core.http_server import free_port
from smbc.core.remote_calls import RemoteCall
from smbc.core.runtime import init_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.realtime.models import WebhookDelivery
from smbc.reconcile.models import ReconcileState
from smbc.sandbox.runner import Sandbox

UNFINISHED = ("pending", "processing")


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


def install(sb: Sandbox, db: Database, store_hash: str, settings: Any) -> None:
    from smbc.actions.account import login_with_password

    answer = sb.bc.install(store_hash)
    if answer.status_code >= 400:
        raise SystemExit(f"install of {store_hash} failed: {answer.status_code}")

    def set_up() -> bool:
        with db.session() as s:
            store = s.scalars(select(Store).where(Store.hash == store_hash)).first()
            return bool(store and store.setup_completed_at)

    wait_for(set_up, 60, f"set-up of {store_hash}")
    # Reconciled as of now: a new store's first reconciliation (its look back over the seeded data,
    # work of the install rather than of any webhook) would otherwise fall into the run at random.
    with db.session() as s:
        store_id = s.scalars(select(Store.id).where(Store.hash == store_hash)).one()
        now = datetime.now(UTC)
        s.add(ReconcileState(store_id=store_id, watermark=now, last_run_at=now))
    login_with_password(
        db,
        store_hash,
        email=sb.sm.NORMAL.email,
        password=sb.sm.PASSWORD,
        endpoint=sb.sm_url,
        settings=settings,
        actor="benchmark",
    )


def activity_round(sb: Sandbox, store_hash: str, n: int, orders: list[int]) -> None:
    """One round of shopper and admin actions on one store (about 10 deliveries)."""
    storefront = sb.bc.storefront(store_hash, channel_id=1 + n % 2)
    customer = storefront.register(f"c{n}@bench.example.com", "Bench", f"Customer {n}")
    cart = storefront.add_to_cart(product_id=77, quantity=1)
    storefront.set_cart_email(cart["id"], f"g{n}@bench.example.com")
    item = cart["line_items"]["physical_items"][0]["id"]
    storefront.update_item(cart["id"], item, 2)
    order = storefront.checkout(cart["id"], guest_email=f"g{n}@bench.example.com")
    orders.append(order["id"])
    other = storefront.add_to_cart(product_id=77, quantity=1, customer_id=customer["id"])
    storefront.update_item(other["id"], other["line_items"]["physical_items"][0]["id"], 3)
    if len(orders) > 1:
        sb.bc.admin(store_hash).set_order_status(orders[-2], 2)


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (Linux /proc)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found += process_tree(int(child))
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for each in process_tree(pid):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def cpu_seconds_of(pids: int | Sequence[int]) -> float:
    """User + system CPU seconds of one process or several (each with its descendants)."""
    return sum(cpu_seconds(pid) for pid in ([pids] if isinstance(pids, int) else pids))


@contextmanager
def scratch_database(admin_url: str, prefix: str) -> Iterator[str]:
    """A new PostgreSQL database for one run (its statistics and sizes are the run's alone), dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler(threading.Thread):
    """The worker's RSS once a second, while the run lasts."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.samples: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            try:
                self.samples.append(rss_mb(self.pid))
            except OSError:
                return

    def figures(self) -> dict[str, Any]:
        s = self.samples or [0.0]
        tenth = max(len(s) // 10, 1)
        return {
            "samples": len(s),
            "first_tenth_mean_mb": round(sum(s[:tenth]) / len(s[:tenth]), 1),
            "middle_mb": round(s[len(s) // 2], 1),
            "last_tenth_mean_mb": round(sum(s[-tenth:]) / len(s[-tenth:]), 1),
            "max_mb": round(max(s), 1),
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--stores", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--queue-url", default="")
    parser.add_argument("--timeout", type=float, default=3600.0)
    parser.add_argument("--rate", type=float, default=0.0, help="steady state: deliveries per second")
    parser.add_argument("--duration", type=float, default=300.0, help="steady state: seconds of activity")
    parser.add_argument("--profile", default="", help="directory for py-spy profiles of both processes")
    parser.add_argument("--profile-rate", type=int, default=50, help="py-spy samples a second")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        app_url = f"http://127.0.0.1:{port}"
        with Sandbox(app_url=app_url) as sb:
            settings = load_settings(
                database_url=args.database_url or f"sqlite:///{Path(tmp) / 'smbc.db'}",
                queue_url=args.queue_url or f"sqlite:///{Path(tmp) / 'queue.db'}",
                queue_name=f"bench{port}",
                secret_key=Fernet.generate_key().decode(),
                var_dir=Path(tmp),
                workers="external",
                app_url=app_url,
                **sb.app_settings(),
            )
            db = init_runtime(settings, migrate=True).db
            env = {**os.environ, **app_environment(settings), "SMBC_LOG_LEVEL": "WARNING"}
            smbc = [sys.executable, "-m", "smbc"]
            processes = [
                subprocess.Popen([*smbc, "serve", "--port", str(port)], env=env),
                subprocess.Popen([*smbc, "worker", "--threads", str(args.workers)], env=env),
            ]
            try:
                wait_for(lambda: answers(app_url), 60, "the app to start")
                hashes = [sb.bc.default_store_hash] + [
                    sb.bc.add_store() for _ in range(max(args.stores - 1, 0))
                ]
                for store_hash in hashes:
                    install(sb, db, store_hash, settings)
                sb.bc.faults.latency_ms = args.latency_ms
                sb.sm.faults.latency_ms = int(args.latency_ms)
                result = run(sb, db, hashes, args, web=processes[0].pid, worker=processes[1].pid)
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(timeout=60)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return result


def app_environment(settings: Settings) -> dict[str, str]:
    """The SMBC_* variables that give the child processes the same settings."""
    return settings.environment()


def answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code < 500
    except httpx.HTTPError:
        return False


def start_profiles(directory: str, pids: dict[str, int], rate: int = 50) -> list[subprocess.Popen[bytes]]:
    if not directory:
        return []
    Path(directory).mkdir(parents=True, exist_ok=True)
    beside = Path(sys.executable).parent / "py-spy"  # installed into the same virtualenv, or on PATH
    py_spy = str(beside) if beside.exists() else "py-spy"
    return [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--format",
                "raw",
                "--rate",
                str(rate),
                "--nonblocking",
                "--gil",  # only the thread holding the GIL: where the Python CPU goes, not lock waits
                "--output",
                str(Path(directory) / f"{name}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in pids.items()
    ]


def generate_burst(
    sb: Sandbox, hashes: list[str], args: argparse.Namespace, orders: dict[str, list[int]]
) -> None:
    n = 0
    fired = 0
    while fired < args.deliveries:
        for store_hash in hashes:
            activity_round(sb, store_hash, n, orders[store_hash])
            n += 1
        fired = len(sb.bc.webhooks.log) + sb.bc.webhooks.pending


def generate_steady(
    sb: Sandbox, hashes: list[str], args: argparse.Namespace, orders: dict[str, list[int]]
) -> None:
    """Rounds on the stores in turn, held back so that no more than `rate` deliveries a second fire."""
    fired_before = len(sb.bc.webhooks.log) + sb.bc.webhooks.pending
    started = time.monotonic()
    n = 0
    while (elapsed := time.monotonic() - started) < args.duration:
        fired = len(sb.bc.webhooks.log) + sb.bc.webhooks.pending - fired_before
        if fired >= args.rate * elapsed:
            time.sleep(0.01)
            continue
        store_hash = hashes[n % len(hashes)]
        activity_round(sb, store_hash, n, orders[store_hash])
        n += 1


def percentile(values: list[float], share: float) -> float | None:
    return round(values[max(int(len(values) * share) - 1, 0)], 2) if values else None


def run(
    sb: Sandbox,
    db: Database,
    hashes: list[str],
    args: argparse.Namespace,
    *,
    web: int | Sequence[int],
    worker: int | Sequence[int],
) -> dict[str, Any]:
    """The activity, then the figures; `web` and `worker` are a process id each, or several (their CPU is
    summed; the first worker's RSS is sampled and only the first of each kind is profiled)."""
    webs = [web] if isinstance(web, int) else list(web)
    workers = [worker] if isinstance(worker, int) else list(worker)

    def count(*where: Any) -> int:
        with db.session() as s:
            return int(s.scalar(select(func.count()).select_from(WebhookDelivery).where(*where)) or 0)

    def calls(service: str) -> int:
        with db.session() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(RemoteCall)
                    .where(RemoteCall.service == service, RemoteCall.context.like("delivery:%"))
                )
                or 0
            )

    before = {"bc": calls("bigcommerce"), "sm": calls("salesmanago"), "deliveries": count()}
    orders: dict[str, list[int]] = {h: [] for h in hashes}
    sampler = RssSampler(workers[0])
    profilers = start_profiles(
        args.profile, {"web": webs[0], "worker": workers[0]}, getattr(args, "profile_rate", 50)
    )
    cpu_before = {"web": cpu_seconds_of(webs), "worker": cpu_seconds_of(workers)}
    sampler.start()
    started = time.monotonic()
    (generate_steady if args.rate else generate_burst)(sb, hashes, args, orders)
    generated_in = time.monotonic() - started
    sb.bc.webhooks.flush(args.timeout)
    delivered_in = time.monotonic() - started
    wait_for(lambda: count(WebhookDelivery.status.in_(UNFINISHED)) == 0, args.timeout, "deliveries")
    finished_in = time.monotonic() - started
    cpu = {
        "web": cpu_seconds_of(webs) - cpu_before["web"],
        "worker": cpu_seconds_of(workers) - cpu_before["worker"],
    }
    sampler.stopped.set()
    for profiler in profilers:
        profiler.send_signal(2)  # SIGINT: py-spy writes its profile and exits
        profiler.wait(timeout=60)
    deliveries = count() - before["deliveries"]
    bc_calls = calls("bigcommerce") - before["bc"]
    sm_calls = calls("salesmanago") - before["sm"]
    with db.session() as s:
        statuses = dict(
            s.execute(select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)).all()
        )
        done_rows = s.execute(
            select(
                WebhookDelivery.scope,
                WebhookDelivery.attempts,
                WebhookDelivery.received_at,
                WebhookDelivery.processed_at,
            ).where(WebhookDelivery.status == "done", WebhookDelivery.processed_at.is_not(None))
        ).all()
        waits = sorted((row.processed_at - row.received_at).total_seconds() for row in done_rows)
        # The slowest twentieth (what makes the p95) by scope and attempts: what the tail is made of.
        slow = collections.Counter(
            f"{row.scope} (attempts {row.attempts})"
            for row in done_rows
            if waits and (row.processed_at - row.received_at).total_seconds() >= percentile(waits, 0.95)
        )
        # Deliveries done in each second since the first arrived: a stall (every worker idle while
        # rows wait) shows as a run of zeros, which the percentiles do not show.
        first = min((row.received_at for row in done_rows), default=None)
        done_by_second = collections.Counter(
            int((row.processed_at - first).total_seconds()) for row in done_rows if first is not None
        )
        skipped = dict(
            s.execute(
                select(WebhookDelivery.scope + ": " + WebhookDelivery.reason, func.count())
                .where(WebhookDelivery.status == "skipped")
                .group_by(WebhookDelivery.scope, WebhookDelivery.reason)
            ).all()
        )
    per_delivery_ms = {name: round(1000 * seconds / max(deliveries, 1), 2) for name, seconds in cpu.items()}
    return {
        "benchmark": "realtime_end_to_end",
        "mode": f"steady {args.rate:g}/s for {args.duration:g} s" if args.rate else "burst",
        "stores": len(hashes),
        "latency_ms": args.latency_ms,
        "workers": args.workers,
        "deliveries": deliveries,
        "statuses": statuses,
        "skipped_why": skipped,
        "activity_generated_s": round(generated_in, 2),
        # When the fake BigCommerce had posted every webhook (and the app had answered it).
        "webhooks_delivered_s": round(delivered_in, 2),
        "until_salesmanago_has_everything_s": round(finished_in, 2),
        "deliveries_per_s": round(deliveries / finished_in, 1),
        # From the webhook's arrival to its processing being done (sent to SALESmanago).
        "received_to_done_p50_s": percentile(waits, 0.50),
        "received_to_done_p95_s": percentile(waits, 0.95),
        "received_to_done_p99_s": percentile(waits, 0.99),
        "slowest_twentieth": dict(slow.most_common(8)),
        "done_by_second": [done_by_second.get(n, 0) for n in range(max(done_by_second, default=-1) + 1)],
        "cpu_ms_per_delivery": {**per_delivery_ms, "total": round(sum(per_delivery_ms.values()), 2)},
        "worker_rss": sampler.figures(),
        "bigcommerce_calls_per_delivery": round(bc_calls / max(deliveries, 1), 3),
        "salesmanago_calls_per_delivery": round(sm_calls / max(deliveries, 1), 3),
        "salesmanago_events": len(sb.sm.events(sb.sm.NORMAL.client_id)),
        "salesmanago_contacts": len(sb.sm.contacts(sb.sm.NORMAL.client_id)),
    }


if __name__ == "__main__":
    main()
