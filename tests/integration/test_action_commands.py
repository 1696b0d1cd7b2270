"""The commands that run the dashboard's buttons (`smbc sm rotate-callback-token`, `smbc export
cancel|resend`, `smbc monitoring restore`, `smbc deliveries retry`): what they print, and clear
refusals that change nothing (the effects themselves are compared with the dashboard's in
test_action_parity.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from smbc.cli.main import app
from smbc.core.config import Settings, get_settings
from smbc.core.encryption import configure
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.export import service
from smbc.export.models import Export, ExportStatus
from smbc.realtime import inbox
from smbc.realtime.models import WebhookDelivery
from smbc.settings.models import SettingsChange

runner = CliRunner()
APP_URL = "https://smbc.example.test"


@pytest.fixture
def db(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    for name, value in {
        "SMBC_DATABASE_URL": settings.database_url,
        "SMBC_QUEUE_URL": settings.queue_url,
        "SMBC_SECRET_KEY": settings.secret_key,
        "SMBC_VAR_DIR": str(settings.var_dir),
        "SMBC_APP_URL": APP_URL,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    configure(settings.secret_keys)
    database = Database(settings.database_url)
    database.upgrade()
    with database.session() as s:
        s.add(Store(hash="abc123", status="installed", channels=[], sites=[]))
        s.add(Store(hash="other9", status="installed", channels=[], sites=[]))
    yield database
    get_settings.cache_clear()
    database.dispose()


def smbc(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def callback_secret(db: Database, store_hash: str = "abc123") -> str | None:
    with db.session() as s:
        return s.scalar(select(Store).where(Store.hash == store_hash)).callback_secret


def test_rotating_the_callback_token_prints_the_new_urls_and_logs_the_change(db: Database) -> None:
    code, first = smbc("sm", "rotate-callback-token", "--store", "abc123")
    assert code == 0, first
    token = callback_secret(db)
    assert (
        token and f"{APP_URL}/callbacks/salesmanago/opt-in?email=$email$&store=abc123&token={token}" in first
    )
    assert "the old ones no longer work" in first

    code, second = smbc("sm", "rotate-callback-token", "--store", "abc123")
    assert code == 0 and callback_secret(db) not in (None, token) and token not in second
    with db.session() as s:
        logged = s.scalars(select(SettingsChange).where(SettingsChange.key == "callback_token")).all()
        assert len(logged) == 2 and all(row.actor.startswith("cli") for row in logged)


@pytest.mark.parametrize(
    "command",
    [
        ("sm", "rotate-callback-token"),
        ("sm", "logout"),
        ("monitoring", "restore"),
        ("deliveries", "retry", "1"),
        ("export", "cancel", "1"),
        ("export", "resend", "1"),
    ],
)
def test_an_unknown_store_is_refused_by_every_action_command(db: Database, command: tuple[str, ...]) -> None:
    code, output = smbc(*command, "--store", "nope")
    assert code == 1 and "No installed store with hash 'nope'" in output


def test_cancel_stops_a_queued_export_and_refuses_one_not_running_or_not_this_stores(db: Database) -> None:
    with db.session() as s:
        store_id = s.scalar(select(Store.id).where(Store.hash == "abc123"))
    first, last = date(2026, 2, 1), date(2026, 2, 2)
    start, end = service.day_bounds(first, last, "UTC")
    with db.session() as s:
        s.add(
            Export(
                store_id=store_id,
                kind="events",
                status=ExportStatus.QUEUED.value,
                active_slot=f"{store_id}:events",
                date_from=first,
                date_to=last,
                from_utc=start,
                to_utc=end,
            )
        )

    assert smbc("export", "cancel", "--store", "other9", "1") == (1, "Export #1 is not running.\n")
    assert smbc("export", "cancel", "--store", "abc123", "1") == (
        0,
        "Export #1 is stopping after the batch in hand.\n",
    )
    with db.session() as s:
        assert s.get(Export, 1).status == "cancelled"
    assert smbc("export", "cancel", "--store", "abc123", "1") == (1, "Export #1 is not running.\n")
    code, output = smbc("export", "resend", "--store", "abc123", "1")
    assert code == 2 and "Export #1 has no unconfirmed events." in output


def test_retry_refuses_a_delivery_of_another_store_or_one_not_failed(db: Database) -> None:
    with db.session() as s:
        store_id = s.scalar(select(Store.id).where(Store.hash == "abc123"))
    delivery_id = inbox.record_synthetic(
        db, store_id, "store/customer/created", {"type": "customer", "id": 1}, created_at=1, source="webhook"
    )
    assert smbc("deliveries", "retry", "--store", "other9", str(delivery_id)) == (
        1,
        f"No delivery {delivery_id} in this store.\n",
    )
    code, output = smbc("deliveries", "retry", "--store", "abc123", str(delivery_id))
    assert code == 1 and "is not failed or skipped, so it was not retried" in output

    with db.session() as s:
        s.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(status="failed", reason="stopped after 5 attempts: internal error", attempts=5)
        )
    assert smbc("deliveries", "retry", "--store", "abc123", str(delivery_id)) == (
        0,
        f"Delivery {delivery_id} was queued again.\n",
    )
    with db.session() as s:
        row = s.get(WebhookDelivery, delivery_id)
        assert (row.status, row.attempts, row.reason) == ("pending", 0, "")
