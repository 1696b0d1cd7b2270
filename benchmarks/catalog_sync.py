"""Product catalog full sync benchmark: a sandbox store with 50,000 products (20,000 with three
variants) on two storefronts, BigCommerce's Pro quota (450 requests / 30 s) and 50 ms of latency on
every call to both fakes.

    python benchmarks/catalog_sync.py [--products 50000] [--with-variants 20000] [--latency-ms 50]
        [--quota 450] [--window-s 30] [--naive-sample 500] [--database-url postgresql+psycopg://...]

Prints JSON: per storefront, the wall time against the time the quota alone allows (all of it, and
the share a background job may use), BigCommerce and SALESmanago requests per 1,000 products (from
the app's own RemoteCall rows) and the peak RSS of the process that ran the sync (a child process, so
the fakes' memory is not counted). Then the naive way, one product read per product, on a sample of
`--naive-sample` products through the same client and limiter, and what it would cost for the store.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from export_benchmark import measured_child
from sqlalchemy import func, select

from smbc.account.models import SalesmanagoAccount
from smbc.bigcommerce import catalog as bc_catalog
from smbc.bigcommerce.client import CallBuffer
from smbc.bigcommerce.client import for_store as bc_for_store
from smbc.bigcommerce.limiter import EXPORT_RESERVE
from smbc.catalog import service
from smbc.catalog.models import CatalogSync
from smbc.core.config import load_settings
from smbc.core.remote_calls import RemoteCall
from smbc.core.runtime import init_runtime
from smbc.db.models import Store
from smbc.salesmanago.client import compute_sha
from smbc.sandbox import Sandbox
from smbc.sandbox.bigcommerce import DEFAULT_APP_SCOPES
from smbc.settings.store_settings import save_store_settings

SRC = Path(__file__).resolve().parents[1] / "src"
CHILD = measured_child("smbc.catalog.sync", "run_sync", "on_page")
CHANNELS = (1, 2)


def set_up(sb: Sandbox, settings: Any, store_hash: str, args: argparse.Namespace) -> int:
    runtime = init_runtime(settings, migrate=True)
    sb.bc.set_quota(store_hash, requests=args.quota, window_s=args.window_s)
    token = sb.bc.issue_token(store_hash, settings.bc_client_id, DEFAULT_APP_SCOPES)
    normal = sb.sm.NORMAL
    key_request = {
        "email": normal.email,
        "password": normal.password,
        "keyName": "BC_bench",
        "expiry": "NEVER",
    }
    v3_key = httpx.post(f"{sb.sm_url}/v3/auth/create", json=key_request, timeout=30).json()["apiKey"]
    catalogs = {}
    for channel in CHANNELS:
        body = {
            "name": f"Bench_{channel}",
            "currency": "USD",
            "location": f"sm_bench{channel}",
            "setAsDefault": False,
        }
        answer = httpx.post(
            f"{sb.sm_url}/v3/product/catalogUpsert", json=body, headers={"API-KEY": v3_key}, timeout=30
        )
        catalogs[f"catalog.{channel}"] = answer.json()["catalogId"]
    channels = [
        {"id": c, "name": f"Storefront {c}", "type": "storefront", "status": "active"} for c in CHANNELS
    ]
    sites = [
        {"channel_id": c, "urls": [{"type": "primary", "url": sb.bc.storefront_url(store_hash, c)}]}
        for c in CHANNELS
    ]
    with runtime.db.session() as s:
        store = Store(
            hash=store_hash,
            status="installed",
            access_token=token,
            timezone="UTC",
            info={},
            channels=channels,
            sites=sites,
        )
        s.add(store)
        s.flush()
        s.add(
            SalesmanagoAccount(
                store_id=store.id,
                endpoint=sb.sm_url,
                client_id=normal.client_id,
                api_key="benchmark-api-key",
                sha=compute_sha("benchmark-api-key", normal.client_id, normal.api_secret),
                login_email=normal.email,
                owners=list(normal.owners),
                auth_mode="credentials",
                v3_key=v3_key,
            )
        )
        s.flush()
        save_store_settings(s, store.id, catalogs, "benchmark", channel_ids=set(CHANNELS))
        return store.id


def run_one(settings: Any, store_id: int, channel: int, args: argparse.Namespace) -> dict[str, Any]:
    db = init_runtime(settings).db
    [sync_id] = service.start_sync(db, store_id, [channel], actor="benchmark", enqueue=False)
    env = {**os.environ, "PYTHONPATH": str(SRC), **settings.environment(), "SMBC_LOG_LEVEL": "WARNING"}
    started = time.monotonic()
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(sync_id)], env=env, capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - started
    if child.returncode != 0:
        raise SystemExit(f"storefront {channel} sync failed:\n{child.stderr[-3000:]}")
    outcome = json.loads(child.stdout.strip().splitlines()[-1])
    with db.session() as s:
        row = s.get(CatalogSync, sync_id)
        assert row is not None
        calls = dict(
            s.execute(
                select(RemoteCall.service, func.count())
                .where(RemoteCall.context == f"catalog:{sync_id}")
                .group_by(RemoteCall.service)
            ).all()
        )
        products = row.products_read
        bc_requests, sm_requests = calls.get("bigcommerce", 0), calls.get("salesmanago", 0)
        samples = outcome["samples"]
        marks = sorted({min(4, len(samples) - 1), len(samples) // 2, len(samples) - 1}) if samples else []
        return {
            "status": row.status,
            "products": products,
            "salesmanago_products_sent": row.sent,
            "refused": row.failed,
            "wall_s": round(wall, 1),
            "quota_alone_s": round(bc_requests / args.quota * args.window_s, 1),
            "quota_background_share_s": round(
                bc_requests / (args.quota * (1 - EXPORT_RESERVE)) * args.window_s, 1
            ),
            "bigcommerce_requests": bc_requests,
            "bigcommerce_requests_per_1000": round(bc_requests * 1000 / max(products, 1), 2),
            "salesmanago_requests": sm_requests,
            "salesmanago_requests_per_1000": round(sm_requests * 1000 / max(products, 1), 2),
            "peak_rss_mb": round(outcome["peak_rss_mb"], 1),
            # RSS after the 5th page, halfway and after the last: flat memory keeps these close.
            "rss_mb_by_progress": [round(samples[i], 1) for i in marks],
        }


def naive(
    settings: Any, store_id: int, args: argparse.Namespace, products_per_channel: int
) -> dict[str, Any]:
    """One product read per product (ids from the list pages), on a sample, through the same client."""
    db = init_runtime(settings).db
    with db.session() as s:
        store = s.get(Store, store_id)
        assert store is not None
        s.expunge(store)
    calls = CallBuffer(context="naive")
    bc = bc_for_store(store, recorder=calls, priority="export", context="naive")
    started = time.monotonic()
    ids: list[int] = []
    for page in bc_catalog.product_pages(bc, CHANNELS[0]):
        ids.extend(int(p["id"]) for p in page)
        if len(ids) >= args.naive_sample:
            break
    for product_id in ids[: args.naive_sample]:
        bc.get(f"/v3/catalog/products/{product_id}", {"include": bc_catalog.PRODUCT_INCLUDE})
    wall = time.monotonic() - started
    sample = min(len(ids), args.naive_sample)
    requests = len(calls.calls)
    per_1000 = requests * 1000 / max(sample, 1)
    whole = per_1000 * products_per_channel * len(CHANNELS) / 1000
    return {
        "sample_products": sample,
        "bigcommerce_requests": requests,
        "bigcommerce_requests_per_1000": round(per_1000, 2),
        "wall_s": round(wall, 1),
        "store_estimate_requests": round(whole),
        "store_estimate_quota_alone_s": round(whole / args.quota * args.window_s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=50_000)
    parser.add_argument("--with-variants", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--quota", type=int, default=450)
    parser.add_argument("--window-s", type=float, default=30)
    parser.add_argument("--naive-sample", type=int, default=500)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="smbc-catalog-bench-"))
    with Sandbox() as sb:
        settings = load_settings(
            database_url=args.database_url or f"sqlite:///{tmp / 'smbc.db'}",
            queue_url=f"sqlite:///{tmp / 'queue.db'}",
            secret_key=Fernet.generate_key().decode(),
            var_dir=tmp,
            **sb.app_settings(),
        )
        store_hash = sb.bc.default_store_hash
        sb.bc.seed(store_hash, products=args.products, products_with_variants=args.with_variants)
        store_id = set_up(sb, settings, store_hash, args)
        sb.bc.faults.latency_ms = args.latency_ms
        sb.sm.faults.latency_ms = args.latency_ms
        report: dict[str, Any] = {
            "products": args.products,
            "products_with_variants": args.with_variants,
            "storefronts": len(CHANNELS),
            "product_identifier": "id",
            "latency_ms_both_fakes": args.latency_ms,
            "quota": f"{args.quota}/{args.window_s:g}s",
            "background_share_of_quota": 1 - EXPORT_RESERVE,
            "database": "postgresql" if settings.database_url.startswith("postgresql") else "sqlite",
        }
        for channel in CHANNELS:
            report[f"storefront_{channel}"] = run_one(settings, store_id, channel, args)
            print(f"storefront {channel}: {json.dumps(report[f'storefront_{channel}'])}", file=sys.stderr)
        largest = max(report[f"storefront_{c}"]["products"] for c in CHANNELS)
        report["naive_one_read_per_product"] = naive(settings, store_id, args, largest)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
