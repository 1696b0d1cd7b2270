"""Archival export benchmark: customers as contacts and orders as events from a seeded sandbox store,
with BigCommerce's Pro quota (450 requests / 30 s) and 50 ms of latency on every BigCommerce call.

    python benchmarks/export_benchmark.py [--customers 100000] [--orders 100000] [--latency-ms 50]
        [--sm-latency-ms 0] [--quota 450] [--window-s 30] [--batch-size 400]
        [--database-url postgresql+psycopg://...] [--kinds contacts,events] [--profile DIR]

Prints JSON: for each export, the wall time against the time the quota alone allows (all of it, and
the 70 % an export may use, the rest being kept for real time), BigCommerce and SALESmanago requests
per 1,000 records (from the app's own RemoteCall rows), and the peak RSS and CPU time per record of
the process that ran the export. Each export runs in a child process (`run_export` with no time
slice), so its memory and CPU are measured apart from the fakes. Each fake serves from a process of
its own (the fake BigCommerce holds the whole store), so that the load generator's CPU, which at
quota pace is about as much as the export's, does not set the export's wall time (`--fakes-here`:
both in this process, as before 2026-12-05).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import func, select

from smbc.account.models import SalesmanagoAccount
from smbc.bigcommerce.limiter import EXPORT_RESERVE
from smbc.core.config import load_settings
from smbc.core.http_server import BackgroundServer
from smbc.core.remote_calls import RemoteCall
from smbc.core.runtime import init_runtime
from smbc.db.models import Store
from smbc.export import service
from smbc.export.models import Export
from smbc.salesmanago.client import compute_sha
from smbc.sandbox import Sandbox
from smbc.sandbox.bigcommerce import DEFAULT_APP_SCOPES, FakeBigCommerce
from smbc.sandbox.salesmanago import FakeSalesmanago

SRC = Path(__file__).resolve().parents[1] / "src"


def measured_child(module: str, function: str, hook: str, *, settle_gc: bool = False) -> str:
    """A child script running one long job to its end, sampling its RSS at each `hook` call;
    `settle_gc`: the collector settled first, as `smbc worker` does before it takes work."""
    settle = (
        "from smbc.cli.main import settle_garbage_collector; settle_garbage_collector()" if settle_gc else ""
    )
    return f"""
import json, os, sys, time
from smbc.core.config import load_settings
from smbc.core.runtime import init_runtime
from {module} import {function}
samples = []
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
def sample(row):
    samples.append(rss_mb())
init_runtime(load_settings())
{settle}
main_started = time.thread_time()
profile_to = os.environ.get("SMBC_BENCH_PROFILE")
if profile_to:  # --profile: CPU time of the job's thread, without the fakes (another process)
    import cProfile
    profiler = cProfile.Profile(time.thread_time)
    status = profiler.runcall({function}, int(sys.argv[1]), time_slice=None, force=True, {hook}=sample)
    profiler.dump_stats(profile_to)
else:
    status = {function}(int(sys.argv[1]), time_slice=None, force=True, {hook}=sample)
# VmHWM, not ru_maxrss: the latter keeps the RSS the process had before exec (a fork of the
# benchmark, which holds the whole fake store) and would measure the fakes, not the job.
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
main_cpu = time.thread_time() - main_started
print(json.dumps({{"status": status, "peak_rss_mb": peak, "samples": samples, "main_cpu_s": main_cpu}}))
"""


CHILD = measured_child("smbc.export.runner", "run_export", "on_batch")
SETTLED_CHILD = measured_child("smbc.export.runner", "run_export", "on_batch", settle_gc=True)
FIRST, LAST = date(2025, 1, 1), date(2025, 12, 31)


class FakeProcess:
    """One fake on its own server in a forked process, driven by calls sent down a pipe: `call("seed",
    ...)` runs `fake.seed(...)` there; a dotted name reaches an attribute's method, `set:` sets one."""

    def __init__(self, make: Callable[[], Any]) -> None:
        context = multiprocessing.get_context("fork")  # forked before this process starts threads
        self._conn, theirs = context.Pipe()
        self._process = context.Process(target=_serve_fake, args=(make, theirs), daemon=True)
        self._process.start()
        self.url: str = self._conn.recv()

    def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        self._conn.send((name, args, kwargs))
        ok, value = self._conn.recv()
        if not ok:
            raise RuntimeError(f"{name} in the fake's process: {value}")
        return value

    def stop(self) -> None:
        self._conn.send(None)
        self._process.join(10)


def _serve_fake(make: Callable[[], Any], conn: Connection) -> None:
    fake = make()
    server = BackgroundServer(fake.app, host="127.0.0.1")
    fake.bind(f"http://127.0.0.1:{server.port}")
    server.start()
    conn.send(f"http://127.0.0.1:{server.port}")
    while (request := conn.recv()) is not None:
        name, args, kwargs = request
        try:
            *path, last = name.split(".")
            target = fake
            for part in path:
                target = getattr(target, part)
            if last.startswith("set:"):
                setattr(target, last.removeprefix("set:"), args[0])
                value = None
            else:
                value = getattr(target, last)
                value = value(*args, **kwargs) if callable(value) else value
            conn.send((True, value))
        except Exception as exc:  # sent back, raised in the benchmark
            conn.send((False, repr(exc)))
    server.stop()


class Fakes:
    """The fakes the export talks to: each in its own process, or (`here`) a Sandbox in this one."""

    def __init__(self, here: bool) -> None:
        self.sandbox = Sandbox().start() if here else None
        if self.sandbox is None:
            self.bc = FakeProcess(lambda: FakeBigCommerce(client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
            self.sm = FakeProcess(FakeSalesmanago)

    def bc_call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._call("bc", name, *args, **kwargs)

    def sm_call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._call("sm", name, *args, **kwargs)

    def _call(self, which: str, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.sandbox is None:
            return getattr(self, which).call(name, *args, **kwargs)
        *path, last = name.split(".")
        target = getattr(self.sandbox, which)
        for part in path:
            target = getattr(target, part)
        if last.startswith("set:"):
            setattr(target, last.removeprefix("set:"), args[0])
            return None
        value = getattr(target, last)
        return value(*args, **kwargs) if callable(value) else value

    def app_settings(self) -> dict[str, Any]:
        if self.sandbox is not None:
            return self.sandbox.app_settings()
        return {
            "bc_api_url": self.bc.url,
            "bc_login_url": self.bc.url,
            "bc_client_id": CLIENT_ID,
            "bc_client_secret": CLIENT_SECRET,
            "sm_default_endpoint": self.sm.url,
            "sm_v3_url": self.sm.url,
            "sm_endpoint_hosts": self.sm.url,
        }

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
        else:
            self.bc.stop()
            self.sm.stop()


CLIENT_ID, CLIENT_SECRET = "sandbox-client-id", "sandbox-client-secret"  # the fake's own


def set_up(fakes: Fakes, settings: Any, store_hash: str, quota: int, window: float) -> int:
    runtime = init_runtime(settings, migrate=True)
    fakes.bc_call("set_quota", store_hash, requests=quota, window_s=window)
    token = fakes.bc_call("issue_token", store_hash, settings.bc_client_id, DEFAULT_APP_SCOPES)
    normal = fakes.sm_call("NORMAL")
    with runtime.db.session() as s:
        store = Store(hash=store_hash, status="installed", access_token=token, timezone="UTC", info={})
        s.add(store)
        s.flush()
        s.add(
            SalesmanagoAccount(
                store_id=store.id,
                endpoint=settings.sm_default_endpoint,
                client_id=normal.client_id,
                api_key="benchmark-api-key",
                sha=compute_sha("benchmark-api-key", normal.client_id, normal.api_secret),
                login_email=normal.email,
                owners=list(normal.owners),
                auth_mode="credentials",
            )
        )
        return store.id


def run_one(settings: Any, store_id: int, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    db = init_runtime(settings).db
    export_id = service.start_export(
        db, store_id, kind, FIRST, LAST, batch_size=args.batch_size, enqueue=False
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), **settings.environment(), "SMBC_LOG_LEVEL": "WARNING"}
    if args.profile:
        env["SMBC_BENCH_PROFILE"] = str(Path(args.profile) / f"{kind}.prof")
    started = time.monotonic()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = subprocess.run(
        [sys.executable, "-c", SETTLED_CHILD if args.settle_gc else CHILD, str(export_id)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.monotonic() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    export_cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    if child.returncode != 0:
        raise SystemExit(f"{kind} export failed:\n{child.stderr[-3000:]}")
    outcome = json.loads(child.stdout.strip().splitlines()[-1])
    with db.session() as s:
        row = s.get(Export, export_id)
        calls = dict(
            s.execute(
                select(RemoteCall.service, func.count())
                .where(RemoteCall.context == f"export:{export_id}")
                .group_by(RemoteCall.service)
            ).all()
        )
        records = row.done
        bc_requests = calls.get("bigcommerce", 0)
        sm_requests = calls.get("salesmanago", 0)
        window, quota = args.window_s, args.quota
        result = {
            "status": row.status,
            "records": records,
            "sent": row.sent,
            "skipped": row.skipped,
            "failed": row.failed,
            "wall_s": round(wall, 1),
            "export_process_cpu_s": round(export_cpu, 1),  # the rest is waiting: quota, latency, fakes
            # Of which in the kernel: the database's writes, sockets and the threads' GIL hand-overs.
            "export_process_sys_s": round(cpu_after.ru_stime - cpu_before.ru_stime, 1),
            # The job's own thread (planning, mapping, ledgers); the rest: reading pages ahead, upserts.
            "export_main_thread_cpu_s": round(outcome["main_cpu_s"], 1),
            "export_cpu_ms_per_record": round(export_cpu * 1000 / max(records, 1), 3),
            "quota_alone_s": round(bc_requests / quota * window, 1),
            "quota_export_share_s": round(bc_requests / (quota * (1 - EXPORT_RESERVE)) * window, 1),
            "bigcommerce_requests": bc_requests,
            "bigcommerce_requests_per_1000": round(bc_requests * 1000 / max(records, 1), 2),
            "salesmanago_requests": sm_requests,
            "salesmanago_requests_per_1000": round(sm_requests * 1000 / max(records, 1), 2),
            "peak_rss_mb": round(outcome["peak_rss_mb"], 1),
            # RSS after the 5th batch, halfway and after the last: flat memory keeps these close.
            "rss_mb_by_progress": [round(outcome["samples"][i], 1) for i in _marks(len(outcome["samples"]))],
        }
    return result


def _marks(count: int) -> list[int]:
    return sorted({min(4, count - 1), count // 2, count - 1}) if count else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--sm-latency-ms", type=int, default=0, help="latency of every SALESmanago answer")
    parser.add_argument("--quota", type=int, default=450)
    parser.add_argument("--window-s", type=float, default=30)
    parser.add_argument("--batch-size", type=int, default=service.BATCH_SIZE)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--kinds", default="contacts,events", help="which exports to run, comma-separated (default: both)"
    )
    parser.add_argument(
        "--fakes-here", action="store_true", help="run the fakes in this process (as before 2026-12-05)"
    )
    parser.add_argument(
        "--settle-gc",
        action="store_true",
        help="the export's process settles the garbage collector first, as `smbc worker` does",
    )
    parser.add_argument(
        "--profile", default="", help="a directory: each export's process writes <kind>.prof (cProfile) there"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="smbc-export-bench-"))
    fakes = Fakes(args.fakes_here)
    try:
        settings = load_settings(
            database_url=args.database_url or f"sqlite:///{tmp / 'smbc.db'}",
            queue_url=f"sqlite:///{tmp / 'queue.db'}",
            secret_key=Fernet.generate_key().decode(),
            var_dir=tmp,
            **fakes.app_settings(),
        )
        store_hash = fakes.bc_call("default_store_hash")
        seeded_at = time.monotonic()
        fakes.bc_call("seed", store_hash, customers=args.customers, orders=args.orders, start=FIRST, end=LAST)
        seed_s = time.monotonic() - seeded_at
        store_id = set_up(fakes, settings, store_hash, args.quota, args.window_s)
        fakes.bc_call("faults.set:latency_ms", args.latency_ms)
        fakes.sm_call("faults.set:latency_ms", args.sm_latency_ms)
        report: dict[str, Any] = {
            "customers": args.customers,
            "orders": args.orders,
            "bigcommerce_latency_ms": args.latency_ms,
            "salesmanago_latency_ms": args.sm_latency_ms,
            "quota": f"{args.quota}/{args.window_s:g}s",
            "export_share_of_quota": 1 - EXPORT_RESERVE,
            "batch_size": args.batch_size,
            "database": "postgresql" if settings.database_url.startswith("postgresql") else "sqlite",
            "seed_s": round(seed_s, 1),
            "fakes": "in this process" if args.fakes_here else "each in its own process",
            "garbage_collector": "settled as smbc worker's" if args.settle_gc else "as Python starts",
        }
        for kind in args.kinds.split(","):
            report[kind] = run_one(settings, store_id, kind, args)
            print(f"{kind}: {json.dumps(report[kind])}", file=sys.stderr)
        report["salesmanago_contacts"] = len(
            fakes.sm_call("contacts", normal_id := fakes.sm_call("NORMAL").client_id)
        )
        report["salesmanago_events"] = len(fakes.sm_call("events", normal_id))
    finally:
        fakes.stop()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
