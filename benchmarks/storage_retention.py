"""Storage per 1,000 deliveries, and what retention gives back: the real-time benchmark's shopper
activity (sandbox stores, real `smbc serve` and `smbc worker` processes), then every table's rows and
bytes (indexes included) per 1,000 deliveries, then a retention run as if the window had passed.

    python benchmarks/storage_retention.py [--deliveries 2000] [--stores 2] [--workers 4]
        [--postgres-admin-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Prints JSON, one entry per database: SQLite always, PostgreSQL when an admin URL is given (a
database is created for the run and dropped after). Bytes: SQLite's `dbstat` pages of each table and
its indexes; PostgreSQL's `pg_total_relation_size` (table, indexes and TOAST), after ANALYZE."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from realtime_end_to_end import answers, install, run, wait_for
from sqlalchemy import create_engine, func, select, text

from smbc.core.clock import utcnow
from smbc.core.config import load_settings
from smbc.core.http_server import free_port
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.base import Base
from smbc.db.models import _import_feature_models
from smbc.db.session import Database
from smbc.realtime.models import WebhookDelivery
from smbc.retention.pruning import prune_history
from smbc.sandbox.runner import Sandbox

RETENTION_DAYS = 30


def table_sizes(db: Database) -> dict[str, dict[str, int]]:
    """Rows and bytes (with indexes) of every table of the schema."""
    _import_feature_models()
    sizes: dict[str, dict[str, int]] = {}
    with db.session() as s:
        postgres = s.bind.dialect.name == "postgresql"
        if postgres:
            s.execute(text("ANALYZE"))
        else:
            owner = dict(
                s.execute(
                    text("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table','index')")
                ).all()
            )
            pages: dict[str, int] = {}
            for name, size in s.execute(text("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name")):
                pages[owner.get(name, name)] = pages.get(owner.get(name, name), 0) + int(size)
        for table in Base.metadata.sorted_tables:
            rows = int(s.scalar(select(func.count()).select_from(table)) or 0)
            if postgres:
                size = int(s.scalar(text("SELECT pg_total_relation_size(:t)"), {"t": table.name}) or 0)
            else:
                size = pages.get(table.name, 0)
            sizes[table.name] = {"rows": rows, "bytes": size}
    return sizes


def per_thousand(sizes: dict[str, dict[str, int]], deliveries: int) -> dict[str, dict[str, float]]:
    """Tables that grow with traffic, per 1,000 deliveries (bytes rounded to the KiB)."""
    factor = 1000 / max(deliveries, 1)
    return {
        name: {"rows": round(v["rows"] * factor, 1), "kib": round(v["bytes"] * factor / 1024, 1)}
        for name, v in sizes.items()
        if v["rows"]
    }


def measure(database_url: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    app_url = f"http://127.0.0.1:{port}"
    with Sandbox(app_url=app_url) as sb:
        settings = load_settings(
            database_url=database_url,
            queue_url=f"sqlite:///{tmp / f'queue{port}.db'}",
            queue_name=f"storage{port}",
            secret_key=Fernet.generate_key().decode(),
            var_dir=tmp,
            workers="external",
            app_url=app_url,
            **sb.app_settings(),
        )
        db = init_runtime(settings, migrate=True).db
        env = {**os.environ, **settings.environment(), "SMBC_LOG_LEVEL": "WARNING"}
        smbc = [sys.executable, "-m", "smbc"]
        processes = [
            subprocess.Popen([*smbc, "serve", "--port", str(port)], env=env),
            subprocess.Popen([*smbc, "worker", "--threads", str(args.workers)], env=env),
        ]
        try:
            wait_for(lambda: answers(app_url), 60, "the app to start")
            hashes = [sb.bc.default_store_hash] + [sb.bc.add_store() for _ in range(max(args.stores - 1, 0))]
            for store_hash in hashes:
                install(sb, db, store_hash, settings)
            web, worker = processes
            burst = argparse.Namespace(**vars(args), latency_ms=0.0, profile="", rate=0.0, duration=0.0)
            traffic = run(sb, db, hashes, burst, web=web.pid, worker=worker.pid)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=60)
    with db.session() as s:
        deliveries = int(s.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)
    before = table_sizes(db)
    started = time.monotonic()
    report = prune_history(
        db, retention_days=RETENTION_DAYS, now=utcnow() + timedelta(days=RETENTION_DAYS + 1)
    )
    pruned_in = time.monotonic() - started
    after = table_sizes(db)
    close_runtime()
    db.dispose()
    return {
        "database": db.engine.dialect.name,
        "deliveries": deliveries,
        "statuses": traffic["statuses"],
        "per_1000_deliveries": per_thousand(before, deliveries),
        "total_kib_per_1000_deliveries": round(
            sum(v["bytes"] for v in before.values()) * 1000 / max(deliveries, 1) / 1024, 1
        ),
        "retention": {
            "deliveries_deleted": report.deliveries,
            "calls_deleted": report.calls,
            "seconds": round(pruned_in, 2),
            "rows_deleted_per_s": round((report.deliveries + report.calls) / max(pruned_in, 1e-6)),
            # What stays once the window has passed: the ledgers (rows; their bytes stay allocated
            # until VACUUM, which PostgreSQL's autovacuum and SQLite's page reuse take care of).
            "rows_left": {name: v["rows"] for name, v in after.items() if v["rows"]},
        },
    }


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--stores", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--postgres-admin-url", default="")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(measure(f"sqlite:///{Path(tmp) / 'smbc.db'}", Path(tmp), args))
        if args.postgres_admin_url:
            name = f"smbc_storage_{uuid.uuid4().hex[:10]}"
            admin = create_engine(args.postgres_admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            try:
                url = args.postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"
                results.append(measure(url, Path(tmp), args))
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()
    json.dump(results, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return results


if __name__ == "__main__":
    main()
