"""The scaling curve on PostgreSQL + Redis: the real-time benchmark's mixed activity, the same burst for
1, 2 and 4 `smbc worker` processes behind 2 `smbc serve` processes, and whether every store stayed
within its BigCommerce quota and 3 requests in flight, as the fake BigCommerce saw it.

    python benchmarks/scaling_curve.py [--worker-processes 1,2,4] [--deliveries 3000] [--stores 8]
        [--threads 4] [--latency-ms 20] [--quota 75] [--quota-window-s 5] [--webhook-senders 16]
        [--admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres] [--redis-url redis://...]

Each point starts afresh: a new database, a new Redis queue name (and so new limiter keys), new fakes
and stores, two web processes behind a round-robin TCP proxy (benchmarks/round_robin_proxy.py), and
the point's worker processes of `--threads` threads each. The stores are installed, then given the
quota, then the burst runs (benchmarks/realtime_end_to_end.py's `run`) until every delivery is done;
the fake BigCommerce posts `--webhook-senders` webhooks at once.

Prints JSON: per point, deliveries/s end to end and its ratio to the first point's, CPU per delivery
of each kind of process (the app's web and worker processes; the proxy and this process, which runs
the fakes and the shoppers, apart), the share of the machine's CPU that was busy (everyone's), and
from the fake BigCommerce: requests, the most any store received in one of its quota windows and in
any span of the window's length (sliding; a client that follows the reset header may send up to
twice the quota across a window's end), requests refused for the quota, and the most requests in
flight at once for one store. `violations` lists every point where a store went over its quota or
over 3 in flight: a product bug.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import redis
from cryptography.fernet import Fernet
from realtime_end_to_end import answers, cpu_seconds_of, install, run, scratch_database, wait_for

from smbc.core.config import load_settings
from smbc.core.http_server import free_port
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.session import Database
from smbc.sandbox.runner import Sandbox

BENCHMARKS = Path(__file__).resolve().parent
WEB_PROCESSES = 2
MOST_IN_FLIGHT = 3  # per store, whatever the number of processes


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine since boot, every process of every user."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def own_cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def consumer_started(pid: int, threads: int) -> bool:
    """A worker process has started its consumer's threads (imports done, queue and database opened)."""
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > threads
    except OSError:
        return False


def start_proxy(web_ports: list[int]) -> tuple[subprocess.Popen[str], int]:
    proxy = subprocess.Popen(
        [sys.executable, str(BENCHMARKS / "round_robin_proxy.py"), *map(str, web_ports)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proxy.stdout is not None
    return proxy, int(proxy.stdout.readline())


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker-processes", default="1,2,4", help="comma-separated worker process counts")
    parser.add_argument("--deliveries", type=int, default=3000, help="per point")
    # Their quotas together allow about 160 deliveries/s: more than one worker process takes.
    parser.add_argument("--stores", type=int, default=8)
    parser.add_argument("--threads", type=int, default=4, help="threads per worker process")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="of both fakes")
    # The Pro plan's rate (450 per 30 s) in windows short enough that a point spans a dozen of them.
    parser.add_argument("--quota", type=int, default=75, help="BigCommerce requests per window, per store")
    parser.add_argument("--quota-window-s", type=float, default=5.0)
    # BigCommerce's own number is not documented; the fake's 4 would bind before several workers do.
    parser.add_argument("--webhook-senders", type=int, default=16, help="webhooks the fake posts at once")
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--timeout", type=float, default=1800.0, help="per point")
    args = parser.parse_args(argv)

    load_before = os.getloadavg()
    points = [measure(args, int(n)) for n in args.worker_processes.split(",")]
    first = points[0]["deliveries_per_s"] or 1.0
    for point in points:
        point["throughput_vs_first"] = round(point["deliveries_per_s"] / first, 2)
    result = {
        "benchmark": "scaling_curve",
        "web_processes": WEB_PROCESSES,
        "threads_per_worker": args.threads,
        "stores": args.stores,
        "deliveries_per_point": args.deliveries,
        "latency_ms": args.latency_ms,
        "webhook_senders": args.webhook_senders,
        "quota": {"requests": args.quota, "window_s": args.quota_window_s},
        "cpus": os.cpu_count(),
        "load_average_before": [round(v, 2) for v in load_before],
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "curve": [
            {
                "worker_processes": p["worker_processes"],
                "deliveries_per_s": p["deliveries_per_s"],
                "throughput_vs_first": p["throughput_vs_first"],
                "app_cpu_ms_per_delivery": p["cpu_ms_per_delivery"]["app"],
                "machine_cpu_busy": p["machine_cpu_busy"],
                "busiest_quota_window_share": p["bigcommerce"]["busiest_quota_window_share"],
            }
            for p in points
        ],
        "violations": [v for p in points for v in p["violations"]],
        "points": points,
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return result


def measure(args: argparse.Namespace, worker_processes: int) -> dict[str, Any]:
    """One point of the curve, on its own database, queue, fakes and processes."""
    web_ports = [free_port() for _ in range(WEB_PROCESSES)]
    queue_name = f"scaling{uuid.uuid4().hex[:10]}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_database(args.admin_url, "smbc_scaling") as database_url,
    ):
        proxy, proxy_port = start_proxy(web_ports)
        app_url = f"http://127.0.0.1:{proxy_port}"
        try:
            with Sandbox(app_url=app_url) as sb:
                settings = load_settings(
                    database_url=database_url,
                    queue_url=args.redis_url,
                    queue_name=queue_name,
                    secret_key=Fernet.generate_key().decode(),
                    var_dir=Path(tmp),
                    workers="external",
                    app_url=app_url,
                    **sb.app_settings(),
                )
                db = init_runtime(settings, migrate=True).db
                env = {**os.environ, **settings.environment(), "SMBC_LOG_LEVEL": "WARNING"}
                smbc = [sys.executable, "-m", "smbc"]
                webs: list[subprocess.Popen[bytes]] = []
                workers: list[subprocess.Popen[bytes]] = []
                try:
                    for port in web_ports:
                        webs.append(subprocess.Popen([*smbc, "serve", "--port", str(port)], env=env))
                    for _ in range(worker_processes):
                        workers.append(
                            subprocess.Popen([*smbc, "worker", "--threads", str(args.threads)], env=env)
                        )
                    for url in [f"http://127.0.0.1:{port}" for port in web_ports] + [app_url]:
                        wait_for(lambda url=url: answers(url), 60, f"the app at {url}")
                    for worker in workers:
                        wait_for(lambda w=worker: consumer_started(w.pid, args.threads), 60, "the workers")
                    hashes = [sb.bc.default_store_hash] + [
                        sb.bc.add_store() for _ in range(max(args.stores - 1, 0))
                    ]
                    for store_hash in hashes:
                        install(sb, db, store_hash, settings)
                        sb.bc.set_quota(store_hash, requests=args.quota, window_s=args.quota_window_s)
                    sb.bc.webhooks.set_senders(args.webhook_senders)
                    sb.bc.faults.latency_ms = args.latency_ms
                    sb.sm.faults.latency_ms = int(args.latency_ms)
                    return measure_burst(args, sb, db, hashes, webs, workers, proxy.pid)
                finally:
                    stop([*webs, *workers])  # before the fakes they call
                    close_runtime()
        finally:
            stop([proxy])
            forget_queue(args.redis_url, queue_name)


def stop(processes: list[subprocess.Popen[Any]]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=60)


def measure_burst(
    args: argparse.Namespace,
    sb: Sandbox,
    db: Database,
    hashes: list[str],
    webs: list[subprocess.Popen[bytes]],
    workers: list[subprocess.Popen[bytes]],
    proxy: int,
) -> dict[str, Any]:
    bc = sb.bc
    requests_before = {h: bc.requests_by_store[h] for h in hashes}
    refused_before = {h: bc.over_quota[h] for h in hashes}
    web_cpu_before = [cpu_seconds_of(w.pid) for w in webs]
    others_before = {"proxy": cpu_seconds_of(proxy), "fakes_and_shoppers": own_cpu_seconds()}
    busy_before, total_before = machine_ticks()
    figures = run(
        sb,
        db,
        hashes,
        argparse.Namespace(
            deliveries=args.deliveries,
            latency_ms=args.latency_ms,
            workers=args.threads,
            timeout=args.timeout,
            rate=0.0,
            duration=0.0,
            profile="",
        ),
        web=[w.pid for w in webs],
        worker=[w.pid for w in workers],
    )
    busy_after, total_after = machine_ticks()
    others = {
        "proxy": cpu_seconds_of(proxy) - others_before["proxy"],
        "fakes_and_shoppers": own_cpu_seconds() - others_before["fakes_and_shoppers"],
    }
    web_cpu = [cpu_seconds_of(w.pid) - before for w, before in zip(webs, web_cpu_before, strict=True)]
    n = max(figures["deliveries"], 1)
    elapsed = figures["until_salesmanago_has_everything_s"]
    requests = {h: bc.requests_by_store[h] - requests_before[h] for h in hashes}
    busiest_fixed = max(bc.busiest_quota_window[h] for h in hashes)
    busiest_sliding = max(bc.busiest_sliding_window[h] for h in hashes)
    refused = sum(bc.over_quota[h] - refused_before[h] for h in hashes)
    most_in_flight = max(bc.max_in_flight[h] for h in hashes)
    violations = []
    if busiest_fixed > args.quota or refused:
        violations.append(
            f"{len(workers)} worker processes: a store received {busiest_fixed} requests in one quota "
            f"window of {args.quota} ({refused} refused)"
        )
    if most_in_flight > MOST_IN_FLIGHT:
        violations.append(
            f"{len(workers)} worker processes: {most_in_flight} requests in flight for one store"
        )
    cpu = figures["cpu_ms_per_delivery"]
    return {
        "worker_processes": len(workers),
        "deliveries": figures["deliveries"],
        "statuses": figures["statuses"],
        "deliveries_per_s": figures["deliveries_per_s"],
        "activity_generated_s": figures["activity_generated_s"],
        "webhooks_delivered_s": figures["webhooks_delivered_s"],
        "until_salesmanago_has_everything_s": elapsed,
        "received_to_done_p50_s": figures["received_to_done_p50_s"],
        "received_to_done_p95_s": figures["received_to_done_p95_s"],
        "cpu_ms_per_delivery": {
            "web": cpu["web"],
            "worker": cpu["worker"],
            "app": cpu["total"],
            **{name: round(1000 * seconds / n, 2) for name, seconds in others.items()},
        },
        # How the proxy shared the work out: each web process's part of the web CPU.
        "web_cpu_split": [round(s / max(sum(web_cpu), 1e-9), 2) for s in web_cpu],
        # Every process of the machine, other users' too: near 1.0 the CPU binds.
        "machine_cpu_busy": round((busy_after - busy_before) / max(total_after - total_before, 1), 2),
        "bigcommerce": {
            "calls_per_delivery": figures["bigcommerce_calls_per_delivery"],
            "requests": sum(requests.values()),
            "busiest_quota_window": busiest_fixed,
            "busiest_quota_window_share": round(busiest_fixed / args.quota, 2),
            "busiest_sliding_window": busiest_sliding,
            "refused_for_quota": refused,
            # The busiest store's requests per window's length, on average over the run: near the quota
            # (or above it: the fake's windows are fixed, a run's ends cut some short) the quota binds.
            "busiest_store_requests_per_window": round(
                max(requests.values()) * args.quota_window_s / max(elapsed, 1e-9), 1
            ),
            "most_in_flight_per_store": most_in_flight,
        },
        "salesmanago_calls_per_delivery": figures["salesmanago_calls_per_delivery"],
        "slowest_twentieth": figures["slowest_twentieth"],
        "done_by_second": figures["done_by_second"],
        "violations": violations,
    }


def forget_queue(url: str, queue_name: str) -> None:
    """The point's queue and limiter keys (all named after its queue) leave Redis with it."""
    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(f"*{queue_name}*"):
            client.delete(key)
    finally:
        client.close()


if __name__ == "__main__":
    main()
