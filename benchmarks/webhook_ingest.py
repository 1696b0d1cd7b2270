"""Ingest benchmark: POST /webhooks/bigcommerce at a fixed offered load, against a bare endpoint
measured in the same run on the same machine. Prints JSON; the ratio is the figure.

    python benchmarks/webhook_ingest.py [--rate 200] [--seconds 10] [--concurrency 32]
        [--database-url postgresql+psycopg://...] [--queue-url redis://...]

Each server runs alone in a child process (one uvicorn process, as one production web process), so
the load generator here does not share its interpreter: the app (SQLite database and queue unless
told otherwise, no workers: only the receiver is measured), then a bare endpoint that only reads and
parses the body. Each request is a distinct `store/cart/updated` delivery (new hash), so every one is
verified, validated, recorded as an inbox row and enqueued.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from smbc.core.config import load_settings
from smbc.core.http_server import BackgroundServer
from smbc.core.runtime import get_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.stores.hooks import SECRET_HEADER
from smbc.web.app import create_app

SECRET = "bench-secret"  # noqa: S105 (a benchmark store)


def bare_app() -> FastAPI:
    """The least a receiver can do: read the body, parse it, answer 200."""
    app = FastAPI()

    @app.post("/bare")
    async def bare(request: Request) -> JSONResponse:
        json.loads(await request.body())
        return JSONResponse({"result": "ok"})

    return app


def body(n: int) -> bytes:
    return json.dumps(
        {
            "scope": "store/cart/updated",
            "store_id": "1000001",
            "data": {"type": "cart", "id": f"00000000-0000-0000-0000-{n:012d}"},
            "hash": f"{n:040x}",
            "created_at": 1767225600 + n,
            "producer": "stores/bench1",
        }
    ).encode()


def offer(url: str, headers: dict[str, str], rate: float, seconds: float, concurrency: int) -> dict[str, Any]:
    """Open-loop load: request i is sent at start + i/rate whatever the answers before it."""
    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=concurrency))
    start = time.perf_counter() + 0.2
    offset = int(time.time() * 1000) % 10**9 * 1000  # fresh hashes every run

    def one(i: int) -> None:
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        sent = time.perf_counter()
        try:
            status = client.post(url, content=body(offset + i), headers=headers).status_code
        except httpx.HTTPError:
            status = 0
        elapsed = time.perf_counter() - sent
        with lock:
            latencies.append(elapsed)
            statuses[status] = statuses.get(status, 0) + 1

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(total)))
    wall = time.perf_counter() - start
    client.close()
    ordered = sorted(latencies)
    return {
        "offered_per_s": rate,
        "requests": total,
        "achieved_per_s": round(total / wall, 1),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
        "statuses": statuses,
    }


def serve(kind: str, workdir: Path, database_url: str, queue_url: str) -> None:
    """Child process: start one server, print its URL, serve until stdin closes."""
    if kind == "bare":
        server = BackgroundServer(bare_app())
    else:
        settings = load_settings(
            database_url=database_url or f"sqlite:///{workdir / 'smbc.db'}",
            queue_url=queue_url or f"sqlite:///{workdir / 'queue.db'}",
            queue_name=f"bench{workdir.name[-8:]}",
            secret_key=Fernet.generate_key().decode(),
            var_dir=workdir,
            workers="external",
        )
        Database(settings.database_url).upgrade()  # the app migrates SQLite only, as in production
        server = BackgroundServer(create_app(settings, start_workers=False))
    with server:
        if kind == "app":
            with get_runtime().db.session() as s:
                s.query(Store).filter(Store.hash == "bench1").delete()
                s.add(Store(hash="bench1", store_id="1000001", access_token="t", webhook_secret=SECRET))  # noqa: S106
        print(server.url, flush=True)
        sys.stdin.read()


def measure(
    kind: str, path: str, headers: dict[str, str], args: argparse.Namespace, workdir: Path
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--serve", kind, "--workdir", str(workdir)]
    command += ["--database-url", args.database_url, "--queue-url", args.queue_url]
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as child:
        assert child.stdout is not None and child.stdin is not None
        url = child.stdout.readline().strip()
        if not url:
            raise SystemExit(f"the {kind} server did not start")
        try:
            return offer(url + path, headers, args.rate, args.seconds, args.concurrency)
        finally:
            child.stdin.close()
            child.wait(timeout=60)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="offered requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default="", help="default: SQLite in a temporary folder")
    parser.add_argument("--queue-url", default="", help="default: SQLite in a temporary folder")
    parser.add_argument("--serve", choices=("app", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.workdir, args.database_url, args.queue_url)
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        bare = measure("bare", "/bare", {}, args, Path(tmp))
        ingest = measure("app", "/webhooks/bigcommerce", {SECRET_HEADER: SECRET}, args, Path(tmp))
    result = {
        "benchmark": "webhook_ingest",
        "database": "postgresql" if args.database_url.startswith("postgresql") else "sqlite",
        "queue": "redis" if args.queue_url.startswith("redis") else "sqlite",
        "ingest": ingest,
        "bare": bare,
        "p50_ratio": round(ingest["p50_ms"] / bare["p50_ms"], 2),
        "p99_ratio": round(ingest["p99_ms"] / bare["p99_ms"], 2),
        "throughput_ratio": round(ingest["achieved_per_s"] / bare["achieved_per_s"], 3),
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return result


if __name__ == "__main__":
    main()
