"""A hopeless export stops: when every contacts batch raises an error the outcome table does not know
(here a SALESmanago answer the client cannot read, as `contactIds` given as a list once made it),
`smbc export` shows each wait with its reason and ends with the export failed, and the Export Data
tab shows it failed with the reason, within minutes on the controllable clock, never hours."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from export_support import World, export_world
from fastapi.testclient import TestClient
from sm_account_helpers import add_store, bearer, make_app
from typer.testing import CliRunner

from smbc.cli.main import app as cli
from smbc.core.clock import FakeClock, set_clock, utcnow
from smbc.core.config import Settings, get_settings
from smbc.engine.queue import UNEXPECTED_ERROR_ATTEMPTS
from smbc.export import runner
from smbc.export.models import Export
from smbc.salesmanago.client import SalesmanagoClient

REASON = "internal error: AttributeError: 'list' object has no attribute 'items'"
STOPPED = f"stopped after {UNEXPECTED_ERROR_ATTEMPTS} attempts: {REASON}"
FEB = ("--from", "2026-02-01", "--to", "2026-02-28")


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    clock = FakeClock(utcnow())
    previous = set_clock(clock)
    yield clock
    set_clock(previous)


@pytest.fixture
def w(settings: Settings, monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Iterator[World]:
    with export_world(settings) as world:
        for name, value in world.settings.environment().items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        world.seed_completed_orders(2, customers=6)

        def unreadable_answer(self: SalesmanagoClient, upserts: list[dict[str, Any]]) -> Any:
            raise AttributeError("'list' object has no attribute 'items'")

        monkeypatch.setattr(SalesmanagoClient, "batch_upsert", unreadable_answer)
        yield world
        get_settings.cache_clear()


def test_smbc_export_shows_each_wait_and_ends_failed_with_the_reason(w: World, clock: FakeClock) -> None:
    started = clock.now()
    result = CliRunner().invoke(cli, ["export", "contacts", "--store", w.store_hash, *FEB])

    assert result.exit_code == 1, result.output
    waits = re.findall(r"attempt (\d) failed: (.*); retrying in \d+ s", result.output)
    assert waits == [(str(n), REASON) for n in range(1, UNEXPECTED_ERROR_ATTEMPTS)]
    assert "failed: 0 done, 0 sent" in result.output and STOPPED in result.output
    assert clock.now() - started < timedelta(minutes=5)
    row = w.export(1)
    assert (row.status, row.active_slot, row.last_error) == ("failed", None, STOPPED)


def test_the_export_tab_shows_the_hopeless_export_failed_with_the_reason(w: World, clock: FakeClock) -> None:
    with TestClient(make_app(w.settings)) as client:
        headers = bearer(add_store(client.app, w.store_hash))
        form = {"date_from": "2026-02-01", "date_to": "2026-02-28"}
        assert client.post("/app/export/contacts", data=form, headers=headers).status_code == 200
        db = client.app.state.runtime.db
        export_id = 1
        started = clock.now()
        for _ in range(UNEXPECTED_ERROR_ATTEMPTS):  # a worker runs it each time it is due
            runner.run_export(export_id, db=db, time_slice=None)
            with db.session() as s:
                row = s.get(Export, export_id)
                due, status = row.next_attempt_at, row.status
            if status == "running":
                waiting = client.get("/app/export/status", headers=headers).text
                assert f"Waiting to retry (attempt {row.attempts} failed): {REASON}" in _text(waiting)
                clock.set(due)
        assert status == "failed" and clock.now() - started < timedelta(minutes=5)

        html = _text(client.get("/app/export/status", headers=headers).text)
        assert "No export is running." in html
        past = html[html.index("Past exports") :]
        assert "failed" in past and STOPPED in past


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", html.replace("&#39;", "'"))
