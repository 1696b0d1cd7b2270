"""Ingest benchmark: `smbc serve` taking unique webhook deliveries from `wrk` (closed loop), against a
bare Starlette endpoint measured in the same run on the same machine. Prints JSON; the ratio is the figure.

    python benchmarks/webhook_ingest.py [--seconds 10] [--connections 64] [--threads 2] [--rate 1000]
        [--database-url postgresql+psycopg://...] [--queue-url redis://...] [--workers inline|external]
        [--profile DIR]

The app runs as one `smbc serve` process, as in production: embedded defaults unless told otherwise
(SQLite database and queue in a temporary folder, inline workers running). The bare endpoint runs
in its own process under the same uvicorn and only reads the body and parses it. `wrk` sends every
request with a new `store/customer/updated` delivery (a Lua script numbers them per connection
thread), so each one is verified, validated, recorded and enqueued. After the run, the inbox rows
are counted: every 200 the receiver answered must be a row.

With `--rate N` the load is paced instead: each `wrk` thread hands its connections one send slot
every `threads / N` seconds, so at most N requests a second are offered (fewer if the server cannot
keep up with the connections there are). The p99 at a fixed rate is what an SLO at that rate means;
the closed loop measures the most the server takes.

`--profile DIR` attaches `py-spy` to the `smbc serve` process while `wrk` runs: DIR/serve.txt holds the
collapsed stacks of the thread holding the GIL (where the CPU goes), DIR/serve-threads.txt every
thread's, idle ones included (what each thread waits for).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from smbc.core.config import Settings, load_settings
from smbc.core.http_server import free_port
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.realtime.models import WebhookDelivery
from smbc.stores.hooks import SECRET_HEADER, WEBHOOK_PATH

SECRET = "bench-secret"  # noqa: S105 (a benchmark store)

# Every request a new delivery: thread number and a per-thread counter make the hash and the id unique.
WRK_SCRIPT = r"""
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
function init(args)
  run_prefix = args[1]
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if args[2] ~= nil and args[2] ~= "" then wrk.headers[args[3]] = args[2] end
  counter = 0
  thread_rate = args[4]
end
function request()
  counter = counter + 1
  local n = tid * 100000000 + counter
  local body = string.format(
    '{"scope":"store/customer/updated","store_id":"1000001","data":{"type":"customer","id":%d},' ..
    '"hash":"%s%012d","created_at":%d,"producer":"stores/bench1"}', n, run_prefix, n, 1767225600 + counter)
  return wrk.format(nil, nil, nil, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,' ..
    '"non_2xx":%d,"timeouts":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""

# Appended in --rate mode: wrk calls `delay()` (milliseconds) before each request of a connection.
# Its Lua has no wall clock, so the monotonic clock comes through LuaJIT's FFI.
WRK_PACING = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } smbc_timespec;
int clock_gettime(int clk_id, smbc_timespec *tp);
]]
local timespec = ffi.new("smbc_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, timespec)  -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) * 1000 + tonumber(timespec.tv_nsec) / 1e6
end
local next_slot = nil
local MAX_DEBT_MS = 100  -- slots missed while every connection waited are not all sent at once later
function delay()
  local now = now_ms()
  local interval = 1000 / tonumber(thread_rate)
  if next_slot == nil or next_slot < now - MAX_DEBT_MS then next_slot = now end
  local wait = next_slot - now
  next_slot = next_slot + interval
  if wait < 0 then return 0 end
  return wait
end
"""


async def _bare(request: Request) -> JSONResponse:
    json.loads(await request.body())
    return JSONResponse({"result": "ok"})


def serve_bare(port: int) -> None:
    """Child process: the least a receiver can do (read the body, parse it, answer 200)."""
    import uvicorn  # only the child needs it

    app = Starlette(routes=[Route("/bare", _bare, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def wait_until_up(url: str, child: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise SystemExit(f"the server for {url} exited with {child.returncode}")
        try:
            httpx.get(url + "/healthz", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"the server for {url} did not start")


def run_wrk(url: str, args: argparse.Namespace, script: Path, secret: str) -> dict[str, Any]:
    prefix = f"{int(time.time()) % 10**8:08x}"  # fresh hashes every run
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s", "--timeout", "10s"]
    command += ["-s", str(script), url, "--", prefix, secret, SECRET_HEADER]
    if args.rate:
        command.append(str(args.rate / args.threads))  # each wrk thread paces its own connections
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=args.seconds + 60
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("WRK_JSON "))
    raw = json.loads(line.removeprefix("WRK_JSON "))
    seconds = raw["duration_us"] / 1e6
    return {
        "requests": raw["requests"],
        "per_s": round(raw["requests"] / seconds, 1),
        "ok_2xx": raw["requests"] - raw["non_2xx"],
        "non_2xx": raw["non_2xx"],
        "socket_errors": raw["connect_errors"] + raw["read_errors"] + raw["write_errors"] + raw["timeouts"],
        "p50_ms": round(raw["p50_us"] / 1000, 2),
        "p90_ms": round(raw["p90_us"] / 1000, 2),
        "p99_ms": round(raw["p99_us"] / 1000, 2),
        "max_ms": round(raw["max_us"] / 1000, 2),
    }


def start_profiles(directory: str, pid: int) -> list[subprocess.Popen[bytes]]:
    if not directory:
        return []
    Path(directory).mkdir(parents=True, exist_ok=True)
    beside = Path(sys.executable).parent / "py-spy"  # installed into the same virtualenv, or on PATH
    py_spy = str(beside) if beside.exists() else "py-spy"
    command = [py_spy, "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "--nonblocking"]
    return [
        subprocess.Popen(
            [*command, *extra, "--output", str(Path(directory) / name)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, extra in (("serve.txt", ["--gil"]), ("serve-threads.txt", ["--idle", "--threads"]))
    ]


def measured(
    child: subprocess.Popen[bytes],
    url: str,
    args: argparse.Namespace,
    script: Path,
    secret: str,
    profile: str = "",
) -> dict[str, Any]:
    wait_until_up(url.rsplit("/", 1)[0] if url.endswith("/bare") else url.split("/webhooks")[0], child)
    profilers = start_profiles(profile, child.pid)
    before = cpu_seconds(child.pid)
    figures = run_wrk(url, args, script, secret)
    for profiler in profilers:
        profiler.send_signal(2)  # SIGINT: py-spy writes its profile and exits
        profiler.wait(timeout=60)
    user, system = (after - at_start for after, at_start in zip(cpu_seconds(child.pid), before, strict=True))
    figures["server_cpu_ms_per_request"] = round((user + system) * 1000 / figures["requests"], 3)
    figures["server_system_ms_per_request"] = round(system * 1000 / figures["requests"], 3)  # of the above
    return figures


def stop(child: subprocess.Popen[bytes]) -> None:
    child.terminate()
    try:
        child.wait(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def app_settings(args: argparse.Namespace, workdir: Path) -> Settings:
    return load_settings(
        database_url=args.database_url or f"sqlite:///{workdir / 'smbc.db'}",
        queue_url=args.queue_url or f"sqlite:///{workdir / 'queue.db'}",
        queue_name=f"bench{workdir.name[-8:]}",
        secret_key=Fernet.generate_key().decode(),
        var_dir=workdir,
        workers=args.workers,
        bc_client_id="bench",
        bc_client_secret="bench",  # noqa: S106 (no request from BigCommerce is verified here)
    )


def prepare_store(settings: Settings) -> None:
    """Migrate (as `smbc db upgrade` would) and install the benchmark store with its secret."""
    runtime = init_runtime(settings, migrate=True)
    try:
        with runtime.db.session() as s:
            s.query(Store).filter(Store.hash == "bench1").delete()
            s.add(Store(hash="bench1", store_id="1000001", access_token="t", webhook_secret=SECRET))  # noqa: S106
    finally:
        close_runtime()


def inbox_rows(settings: Settings) -> int:
    runtime = init_runtime(settings)
    try:
        with runtime.db.session() as s:
            store = select(Store.id).where(Store.hash == "bench1").scalar_subquery()
            return s.scalar(select(func.count()).where(WebhookDelivery.store_id == store)) or 0
    finally:
        close_runtime()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temporary folder")
    parser.add_argument("--queue-url", default="", help="default: SQLite in a temporary folder")
    parser.add_argument("--workers", choices=("inline", "external"), default="inline")
    parser.add_argument(
        "--rate", type=float, default=0, help="requests offered per second (paced); default: closed loop"
    )
    parser.add_argument(
        "--smbc", default=str(Path(sys.executable).with_name("smbc")), help="the smbc command"
    )
    parser.add_argument("--profile", default="", help="directory for py-spy profiles of smbc serve")
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return {}
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        script = workdir / "unique_deliveries.lua"
        script.write_text(WRK_SCRIPT + WRK_PACING if args.rate else WRK_SCRIPT)
        port = free_port()
        bare_child = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(port)])
        try:
            bare = measured(bare_child, f"http://127.0.0.1:{port}/bare", args, script, "")
        finally:
            stop(bare_child)
        settings = app_settings(args, workdir)
        prepare_store(settings)
        port = free_port()
        env = {**os.environ, **settings.environment()}
        app_child = subprocess.Popen(
            [args.smbc, "serve", "--port", str(port)], env=env, stdout=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
            ingest = measured(app_child, url, args, script, SECRET, args.profile)
        finally:
            stop(app_child)
        ingest["inbox_rows"] = inbox_rows(settings)
    result = {
        "benchmark": "webhook_ingest",
        "database": "postgresql" if args.database_url.startswith("postgresql") else "sqlite",
        "queue": "redis" if args.queue_url.startswith("redis") else "sqlite",
        "workers": args.workers,
        "connections": args.connections,
        "offered_per_s": args.rate or "closed loop",
        "seconds": args.seconds,
        "ingest": ingest,
        "bare": bare,
        "throughput_ratio": round(ingest["per_s"] / bare["per_s"], 3),
        "p99_ratio": round(ingest["p99_ms"] / bare["p99_ms"], 2) if bare["p99_ms"] else None,
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return result


if __name__ == "__main__":
    main()
