"""Seed the fake BigCommerce with 100,000 customers, subscribers and orders, then page through all of
them over HTTP as an export would; prints JSON figures.

    PYTHONPATH=src python benchmarks/fake_bigcommerce_seed.py [--customers N] [--orders N]
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from datetime import date

import httpx

from smbc.core.http_server import BackgroundServer
from smbc.sandbox.bigcommerce import FakeBigCommerce


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=100_000)
    args = parser.parse_args()
    bc = FakeBigCommerce(client_id="bench", client_secret=secrets.token_hex(32))
    store_hash = bc.default_store_hash
    started = time.perf_counter()
    counts = bc.seed(
        store_hash,
        customers=args.customers,
        orders=args.orders,
        start=date(2025, 1, 1),
        end=date(2025, 12, 31),
    )
    seed_s = time.perf_counter() - started
    bc.set_quota(store_hash, requests=1_000_000)
    token = bc.issue_token(store_hash, "bench", ["store_v2_customers", "store_v2_orders_read_only"])
    figures: dict[str, object] = {"seeded": counts, "seed_s": round(seed_s, 2)}
    with BackgroundServer(bc.app) as server:
        bc.bind(server.url)
        with httpx.Client(
            base_url=f"{server.url}/stores/{store_hash}", headers={"X-Auth-Token": token}, timeout=60
        ) as api:
            started = time.perf_counter()
            seen, pages, params = 0, 0, {"limit": "250", "date_created:min": "2025-01-01"}
            answer = api.get("/v3/customers", params=params).json()
            while True:
                pages += 1
                seen += len(answer["data"])
                cursor = answer["meta"]["cursor_pagination"]
                if "next" not in cursor["links"]:
                    break
                answer = api.get("/v3/customers", params={**params, "after": cursor["end_cursor"]}).json()
            figures["customers_paged"] = {
                "rows": seen,
                "pages": pages,
                "s": round(time.perf_counter() - started, 2),
            }
            started = time.perf_counter()
            seen, pages, min_id = 0, 0, 0
            while True:
                answer = api.get(
                    "/v2/orders",
                    params={
                        "min_id": str(min_id),
                        "limit": "250",
                        "sort": "id:asc",
                        "min_date_created": "2025-01-01T00:00:00Z",
                    },
                )
                if answer.status_code == 204:
                    break
                rows = answer.json()
                pages += 1
                seen += len(rows)
                min_id = rows[-1]["id"] + 1
            figures["orders_paged"] = {
                "rows": seen,
                "pages": pages,
                "s": round(time.perf_counter() - started, 2),
            }
    bc.close()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
