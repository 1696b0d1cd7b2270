"""Finding 5 of the readiness audit, as a script meets it: `smbc stores` through a real pipe gives the
whole store hash, and that hash, read back from the output, is what the other listings take."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smbc.cli.main import app
from smbc.core.config import Settings, get_settings
from smbc.core.runtime import Runtime, close_runtime, init_runtime
from smbc.db.models import Store

LONG_HASH = "s02a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3"
LONG_NAME = "A Store Whose Name Is Much Longer Than Any Column Of A Terminal Table"


@pytest.fixture
def runtime(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    for name in ("database_url", "queue_url", "secret_key"):
        monkeypatch.setenv(f"SMBC_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setenv("SMBC_VAR_DIR", str(settings.var_dir))
    get_settings.cache_clear()
    runtime = init_runtime(settings, migrate=True)
    with runtime.db.session() as s:
        s.add(Store(hash=LONG_HASH, status="installed", info={"name": LONG_NAME}, access_token="t"))
    yield runtime
    close_runtime()
    get_settings.cache_clear()


def _piped(*args: str) -> str:
    """The command's stdout read from a pipe, as `smbc stores | cut -f1` reads it."""
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    environment.pop("COLUMNS", None)
    done = subprocess.run(
        [sys.executable, "-m", "smbc", *args], capture_output=True, text=True, env=environment, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_hash_read_back_from_a_piped_listing_is_whole_and_works(runtime: Runtime) -> None:
    rows = [line.split("\t") for line in _piped("stores").splitlines()]
    assert rows[0][:3] == ["store", "name", "status"]
    [store_hash] = [row[0] for row in rows[1:]]
    assert store_hash == LONG_HASH and rows[1][1] == LONG_NAME  # nothing cut, no ellipsis
    assert [s["hash"] for s in json.loads(_piped("stores", "--json"))] == [LONG_HASH]

    runner = CliRunner()
    shown = runner.invoke(app, ["settings", "show", "--store", store_hash])
    assert shown.exit_code == 0 and store_hash in shown.output  # whole, in the callback URLs
    activity = runner.invoke(app, ["activity", "--store", store_hash, "--json"])
    assert activity.exit_code == 0 and json.loads(activity.output)["deliveries"] == []
