"""`smbc export contacts|events` in the foreground against the sandbox (SQLite and PostgreSQL+Redis)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from export_support import World, export_world
from sqlalchemy import select
from typer.testing import CliRunner

from smbc.cli.main import app
from smbc.core.config import Settings
from smbc.engine.ledgers import SentEvent
from smbc.export import service
from smbc.export.models import Export
from support import settings_in_environment

runner = CliRunner()


@pytest.fixture
def w(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with export_world(backend_settings) as world, settings_in_environment(world.settings, monkeypatch):
        yield world


def export(*args: str):
    return runner.invoke(app, ["export", *args])


def test_export_events_and_contacts_in_the_foreground(w: World) -> None:
    w.seed_completed_orders(8, customers=6)
    result = export("events", "--store", w.store_hash, "--from", "2026-02-01", "--to", "2026-02-28")
    assert result.exit_code == 0, result.output
    assert "Events export #1: 2026-02-01 to 2026-02-28 (UTC)" in result.output
    assert "done: 8 done, 8 sent" in result.output
    assert len(w.events("PURCHASE")) == 8

    again = export("events", "--store", w.store_hash, "--from", "2026-02-01", "--to", "2026-02-28")
    assert (
        again.exit_code == 0 and "done: 8 done, 0 sent" in again.output and "already sent: 8" in again.output
    )

    contacts = export(
        "contacts", "--store", w.store_hash, "--from", "2026-02-01", "--to", "2026-02-28", "--tags", "cli run"
    )
    assert contacts.exit_code == 0, contacts.output
    assert sum("CLI_RUN" in c["tags"] for c in w.contacts()) == 6


def test_refusals_are_clear(w: World) -> None:
    running = service.start_export(
        w.db, w.store_id, "contacts", date(2026, 2, 1), date(2026, 2, 2), enqueue=False
    )
    busy = export("contacts", "--store", w.store_hash, "--from", "2026-02-01", "--to", "2026-02-02")
    assert (
        busy.exit_code == 1
        and f"Contacts export #{running} (2026-02-01 to 2026-02-02) is still queued" in busy.output
    )
    backwards = export("events", "--store", w.store_hash, "--from", "2026-02-03", "--to", "2026-02-01")
    assert (
        backwards.exit_code == 2
        and "--to: The end date must be on or after the start date." in backwards.output
    )
    tags = export(
        "events", "--store", w.store_hash, "--from", "2026-02-01", "--to", "2026-02-01", "--tags", "x"
    )
    assert tags.exit_code == 2 and "--tags: Tags apply to contacts exports only." in tags.output
    unknown = export("events", "--store", "nope", "--from", "2026-02-01", "--to", "2026-02-01")
    assert unknown.exit_code == 1 and "No installed store with hash 'nope'" in unknown.output
    no_dates = export("events", "--store", w.store_hash)
    assert no_dates.exit_code == 2 and "--from:" in no_dates.output
    mixed = export("events", "--store", w.store_hash, "--from", "2026-02-01", "--resend-unconfirmed", "1")
    assert mixed.exit_code == 2 and "no --from/--to" in mixed.output
    nothing = export("events", "--store", w.store_hash, "--resend-unconfirmed", str(running))
    assert nothing.exit_code == 2 and "is not an events export" in nothing.output


def test_resend_unconfirmed_sends_only_those_events_again(w: World) -> None:
    w.seed_completed_orders(3)
    first = export("events", "--store", w.store_hash, "--from", "2026-02-01", "--to", "2026-02-28")
    assert first.exit_code == 0, first.output
    with w.db.session() as s:  # as if the worker had died with the last order's event in flight
        last = s.scalars(select(SentEvent).order_by(SentEvent.order_id.desc())).first()
        last.state = "unconfirmed"
        s.get(Export, 1).unconfirmed = 1
        unconfirmed_order = str(last.order_id)

    again = export("events", "--store", w.store_hash, "--resend-unconfirmed", "1")
    assert again.exit_code == 0, again.output
    assert "Events export #2: 2026-02-01 to 2026-02-28" in again.output
    assert "done: 3 done, 1 sent" in again.output and "already sent: 2" in again.output
    sent = [e["externalId"] for e in w.events("PURCHASE")]
    assert len(sent) == 4 and sent[-1] == unconfirmed_order
