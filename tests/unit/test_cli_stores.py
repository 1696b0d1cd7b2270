"""`smbc stores` lists stores and their state; `smbc stores purge HASH` deletes every row of one
store (and nothing of the others)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from smbc.cli.main import app
from smbc.core.config import Settings, get_settings
from smbc.core.remote_calls import RemoteCall, record_call
from smbc.core.runtime import Runtime, close_runtime, init_runtime
from smbc.db.base import Base
from smbc.db.models import Store, StoreUser, User

runner = CliRunner()


@pytest.fixture
def runtime(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    for name in ("database_url", "queue_url", "secret_key"):
        monkeypatch.setenv(f"SMBC_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setenv("SMBC_VAR_DIR", str(settings.var_dir))
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps cells at 80 columns
    get_settings.cache_clear()
    runtime = init_runtime(settings, migrate=True)
    with runtime.db.session() as s:
        shared = User(bc_user_id=1001, email="owner@example.com")
        only_here = User(bc_user_id=1002, email="staff@example.com")
        for hash_, name, status in (
            ("keep1", "Kept Store", "installed"),
            ("gone1", "Purged Store", "uninstalled"),
        ):
            store = Store(hash=hash_, status=status, info={"name": name}, access_token="t")
            s.add(store)
            s.flush()
            s.add(StoreUser(store_id=store.id, user=shared, role="owner"))
            if hash_ == "gone1":
                s.add(StoreUser(store_id=store.id, user=only_here, role="user"))
            record_call(
                s,
                store_id=store.id,
                service="bigcommerce",
                method="GET",
                endpoint="/v2/store",
                outcome="success",
            )
    yield runtime
    close_runtime()
    get_settings.cache_clear()


def rows_of(runtime: Runtime, store_id: int) -> dict[str, int]:
    counts = {}
    with runtime.db.session() as s:
        for table in Base.metadata.sorted_tables:
            for column in ("store_id", "id" if table.name == "stores" else None):
                if column and column in table.c:
                    counts[table.name] = s.scalar(
                        select(func.count()).select_from(table).where(table.c[column] == store_id)
                    )
    return {name: count for name, count in counts.items() if count}  # other areas' empty tables too


def test_stores_lists_every_store_with_its_state(runtime: Runtime) -> None:
    result = runner.invoke(app, ["stores"])
    assert result.exit_code == 0, result.output
    assert "keep1" in result.output and "Kept Store" in result.output
    assert "gone1" in result.output and "uninstalled" in result.output


def test_purge_deletes_every_row_of_one_store(runtime: Runtime) -> None:
    with runtime.db.session() as s:
        gone = s.scalar(select(Store.id).where(Store.hash == "gone1"))
        kept = s.scalar(select(Store.id).where(Store.hash == "keep1"))
    assert sum(rows_of(runtime, gone).values()) == 4
    result = runner.invoke(app, ["stores", "purge", "gone1", "--yes"])
    assert result.exit_code == 0, result.output
    assert "purged store gone1" in result.output
    assert sum(rows_of(runtime, gone).values()) == 0
    assert {t: n for t, n in rows_of(runtime, kept).items() if n} == {
        "stores": 1,
        "store_users": 1,
        "remote_calls": 1,
    }
    with runtime.db.session() as s:
        # The user only linked to the purged store is gone; the shared owner stays.
        assert s.scalars(select(User.bc_user_id)).all() == [1001]
        assert s.scalar(select(func.count()).select_from(RemoteCall)) == 1


def test_purge_asks_first_and_unknown_store_fails(runtime: Runtime) -> None:
    assert runner.invoke(app, ["stores", "purge", "gone1"], input="n\n").exit_code != 0
    with runtime.db.session() as s:
        assert s.scalar(select(Store).where(Store.hash == "gone1")) is not None
    result = runner.invoke(app, ["stores", "purge", "nosuch", "--yes"])
    assert result.exit_code == 1 and "no store nosuch" in result.output


LONG_HASH = "s02a5bcdefghijklmnopqrstuvwxyz0123456789"
LONG_ENDPOINT = "/v3/customers/attribute-values?include=formfields&limit=250&page=17&sort=date_created"


@pytest.fixture
def long_store(runtime: Runtime) -> Runtime:
    with runtime.db.session() as s:
        store = Store(hash=LONG_HASH, status="installed", info={"name": "A Store With A Long Name"})
        s.add(store)
        s.flush()
        record_call(
            s,
            store_id=store.id,
            service="bigcommerce",
            method="GET",
            endpoint=LONG_ENDPOINT,
            outcome="error",
            message="a long message\twith a tab and\na newline that a table would wrap or cut",
        )
    return runtime


def test_piped_listings_print_whole_values(long_store: Runtime) -> None:
    """CliRunner's stdout is not a terminal: one tab-separated line per row, nothing cut."""
    result = runner.invoke(app, ["stores"])
    assert result.exit_code == 0, result.output
    lines = [line.split("\t") for line in result.output.splitlines()]
    assert lines[0][:3] == ["store", "name", "status"]
    assert [LONG_HASH, "A Store With A Long Name", "installed"] in [line[:3] for line in lines]
    assert all(len(line) == len(lines[0]) for line in lines)

    result = runner.invoke(app, ["activity", "--store", LONG_HASH])
    assert result.exit_code == 0, result.output
    calls = result.output.split("# Calls\n")[1].splitlines()
    assert calls[0].split("\t") == ["at", "service", "call", "outcome", "HTTP", "ms", "message"]
    call = calls[1].split("\t")
    assert call[2] == f"GET {LONG_ENDPOINT}"
    assert call[6] == "a long message with a tab and a newline that a table would wrap or cut"

    result = runner.invoke(app, ["settings", "show", "--store", LONG_HASH])
    assert result.exit_code == 0, result.output
    assert LONG_HASH in result.output  # the callback URLs carry it


def test_listings_as_json(long_store: Runtime) -> None:
    result = runner.invoke(app, ["stores", "--json"])
    assert result.exit_code == 0, result.output
    stores = json.loads(result.output)
    assert [(s["hash"], s["name"], s["status"]) for s in stores] == [
        ("gone1", "Purged Store", "uninstalled"),
        ("keep1", "Kept Store", "installed"),
        (LONG_HASH, "A Store With A Long Name", "installed"),
    ]

    result = runner.invoke(app, ["activity", "--store", LONG_HASH, "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["deliveries"] == []
    assert [(c["endpoint"], c["outcome"]) for c in shown["calls"]] == [(LONG_ENDPOINT, "error")]

    result = runner.invoke(app, ["settings", "show", "--store", LONG_HASH, "--json"])
    assert result.exit_code == 0, result.output
    assert LONG_HASH in json.loads(result.output)["callback_url.opt_in"]
