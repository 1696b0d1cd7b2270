"""The per-delivery figures the capacity model (docs/capacity.md) is built from, on PostgreSQL + Redis:

    python benchmarks/capacity_figures.py [--deliveries 1000] [--stores 5] [--latency-ms 20]
        [--workers 8] [--admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
        [--redis-url redis://127.0.0.1:6379/0] [--queue-items 10000]

Prints JSON:
- `redis`: bytes of Redis memory per queued message (a delivery's "work on row N", now and
  scheduled for later) and per store (the BigCommerce limiter's quota hash), read with MEMORY USAGE
  on the keys themselves, so other users of the same Redis do not blur them;
- `postgres`: for real deliveries (the real-time benchmark's shopper activity: webhooks from the
  fake BigCommerce to `smbc serve`, one `smbc worker`), transactions and rows inserted, updated and
  deleted per delivery (from the database's own statistics, in a database of this run alone), rows
  and bytes (table + indexes) each table holds per delivery, and the WAL written per delivery
  (cluster-wide, so an upper bound when anything else runs on the server);
- `cpu`: CPU seconds of the web process and the worker process per delivery.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis
from cryptography.fernet import Fernet
from realtime_end_to_end import answers, app_environment, install, run, scratch_database, wait_for
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from smbc.core import jobs
from smbc.core.config import load_settings
from smbc.core.http_server import free_port
from smbc.core.runtime import close_runtime, init_runtime
from smbc.realtime.processing import process_delivery_task
from smbc.sandbox.runner import Sandbox

TABLES = (
    "webhook_deliveries",
    "remote_calls",
    "sent_events",
    "synced_contacts",
    "cart_windows",
    "cart_links",
    "consent_write_backs",
    "known_subscribers",
    "reconcile_states",
)


# -- Redis -----------------------------------------------------------------------------------------


def redis_figures(url: str, items: int) -> dict[str, Any]:
    """Memory per message of Huey's queue list and of its schedule (a retry's delayed message)."""
    name = f"capacity{uuid.uuid4().hex[:8]}"  # Huey keeps only [a-z0-9] of a name
    jobs.configure_queue(url, name=name)
    client = redis.Redis.from_url(url)
    try:
        for row_id in range(10_000_000, 10_000_000 + items):
            process_delivery_task(row_id)
        eta = datetime.now(UTC) + timedelta(hours=1)
        for row_id in range(20_000_000, 20_000_000 + items):
            # Where a consumer keeps a retry's message until its time comes.
            task = process_delivery_task.s(row_id)
            task.eta = eta
            jobs.huey.add_schedule(task)
        keys = [key.decode() for key in client.scan_iter(f"*{name}*")]
        usage = {key: int(client.memory_usage(key, samples=0) or 0) for key in keys}
        queue_key = next(key for key in keys if "schedule" not in key)
        schedule_key = next(key for key in keys if "schedule" in key)
        return {
            "items": items,
            "bytes_per_queued_message": round(usage[queue_key] / items, 1),
            "bytes_per_scheduled_message": round(usage[schedule_key] / items, 1),
            "keys": usage,
        }
    finally:
        for key in client.scan_iter(f"*{name}*"):
            client.delete(key)
        client.close()


def limiter_bytes_per_store(url: str, queue_name: str, hashes: list[str]) -> float | None:
    """The BigCommerce limiter's quota hash of a store (kept for as long as the store is served);
    the run's keys are dropped afterwards."""
    client = redis.Redis.from_url(url)
    try:
        sizes = [client.memory_usage(f"{queue_name}:bc:{h}:quota", samples=0) for h in hashes]
        for key in client.scan_iter(f"*{queue_name}*"):
            client.delete(key)
    finally:
        client.close()
    known = [size for size in sizes if size]
    return round(sum(known) / len(known), 1) if known else None


# -- PostgreSQL ------------------------------------------------------------------------------------


def database_stats(engine: Engine, database: str) -> dict[str, int]:
    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database "
                "WHERE datname = :name"
            ),
            {"name": database},
        ).one()
        wal = conn.execute(text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")).scalar_one()
    return {
        "commits": int(row.xact_commit),
        "inserted": int(row.tup_inserted),
        "updated": int(row.tup_updated),
        "deleted": int(row.tup_deleted),
        "wal_bytes": int(wal),
    }


def table_figures(engine: Engine) -> dict[str, dict[str, int]]:
    out = {}
    with engine.connect() as conn:
        for table in TABLES:
            rows = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608 (fixed names)
            size = conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": table}).scalar_one()
            writes = conn.execute(
                text("SELECT n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relname = :t"),
                {"t": table},
            ).one()
            out[table] = {
                "rows": int(rows),
                "bytes": int(size),
                "inserted": int(writes.n_tup_ins),
                "updated": int(writes.n_tup_upd),
                "deleted": int(writes.n_tup_del),
            }
    return out


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    return ticks / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--stores", type=int, default=5)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--queue-items", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args(argv)

    result: dict[str, Any] = {
        "benchmark": "capacity_figures",
        "redis": redis_figures(args.redis_url, args.queue_items),
    }
    with scratch_database(args.admin_url, "smbc_capacity") as database_url:
        database = database_url.rsplit("/", 1)[1]
        admin = create_engine(args.admin_url, isolation_level="AUTOCOMMIT")
        engine = create_engine(database_url)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                result.update(measure_deliveries(args, database, database_url, engine, admin, Path(tmp)))
        finally:
            engine.dispose()
            close_runtime()
            admin.dispose()
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return result


def measure_deliveries(
    args: argparse.Namespace, database: str, database_url: str, engine: Engine, admin: Engine, tmp: Path
) -> dict[str, Any]:
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    with Sandbox(app_url=app_url) as sb:
        settings = load_settings(
            database_url=database_url,
            queue_url=args.redis_url,
            queue_name=f"capacity{port}",
            secret_key=Fernet.generate_key().decode(),
            var_dir=tmp,
            workers="external",
            app_url=app_url,
            **sb.app_settings(),
        )
        db = init_runtime(settings, migrate=True).db
        env = {**os.environ, **app_environment(settings), "SMBC_LOG_LEVEL": "WARNING"}
        smbc = [sys.executable, "-m", "smbc"]
        web = subprocess.Popen([*smbc, "serve", "--port", str(port)], env=env)
        worker = subprocess.Popen([*smbc, "worker", "--threads", str(args.workers)], env=env)
        try:
            wait_for(lambda: answers(app_url), 60, "the app to start")
            hashes = [sb.bc.default_store_hash] + [sb.bc.add_store() for _ in range(max(args.stores - 1, 0))]
            for store_hash in hashes:
                install(sb, db, store_hash, settings)
            sb.bc.faults.latency_ms = args.latency_ms
            sb.sm.faults.latency_ms = int(args.latency_ms)
            time.sleep(1.5)  # statistics reach pg_stat_* within a second of a transaction
            before_db = database_stats(admin, database)
            before_tables = table_figures(engine)
            before_cpu = {"web": cpu_seconds(web.pid), "worker": cpu_seconds(worker.pid)}
            figures = run(
                sb,
                db,
                hashes,
                argparse.Namespace(**vars(args), profile="", rate=0.0, duration=0.0),
                web=web.pid,
                worker=worker.pid,
            )
            after_cpu = {"web": cpu_seconds(web.pid), "worker": cpu_seconds(worker.pid)}
            limiter = limiter_bytes_per_store(args.redis_url, settings.queue_name, hashes)
        finally:
            for process in (web, worker):
                process.terminate()
            for process in (web, worker):
                process.wait(timeout=60)
        time.sleep(1.5)
        after_db = database_stats(admin, database)
        after_tables = table_figures(engine)
    n = max(figures["deliveries"], 1)
    per_table = {
        table: {
            "rows_per_delivery": round((after_tables[table]["rows"] - before_tables[table]["rows"]) / n, 3),
            "bytes_per_row": round(after_tables[table]["bytes"] / max(after_tables[table]["rows"], 1)),
            "bytes_per_delivery": round((after_tables[table]["bytes"] - before_tables[table]["bytes"]) / n),
            "writes_per_delivery": round(
                sum(
                    after_tables[table][k] - before_tables[table][k]
                    for k in ("inserted", "updated", "deleted")
                )
                / n,
                2,
            ),
        }
        for table in TABLES
    }
    delta = {key: after_db[key] - before_db[key] for key in after_db}
    return {
        "deliveries": figures["deliveries"],
        "stores": len(hashes),
        "statuses": figures["statuses"],
        "deliveries_per_s": figures["deliveries_per_s"],
        "until_salesmanago_has_everything_s": figures["until_salesmanago_has_everything_s"],
        "postgres": {
            "commits_per_delivery": round(delta["commits"] / n, 2),
            "rows_inserted_per_delivery": round(delta["inserted"] / n, 2),
            "rows_updated_per_delivery": round(delta["updated"] / n, 2),
            "rows_deleted_per_delivery": round(delta["deleted"] / n, 2),
            "wal_bytes_per_delivery_upper_bound": round(delta["wal_bytes"] / n),
            "bytes_per_delivery_all_tables": sum(t["bytes_per_delivery"] for t in per_table.values()),
            "tables": per_table,
        },
        "redis_limiter_bytes_per_store": limiter,
        "cpu": {
            "web_ms_per_delivery": round((after_cpu["web"] - before_cpu["web"]) * 1000 / n, 2),
            "worker_ms_per_delivery": round((after_cpu["worker"] - before_cpu["worker"]) * 1000 / n, 2),
        },
    }


if __name__ == "__main__":
    main()
