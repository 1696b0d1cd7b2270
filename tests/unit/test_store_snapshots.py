"""A worker reuses a store's snapshot (row, settings, credentials) between batches, and never once
anything it was built from has changed: a saved setting, a pause, a log-in or a log-out."""

from __future__ import annotations

from realtime_harness import add_store, save_settings
from sqlalchemy import delete, update

from smbc.account.models import SalesmanagoAccount
from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.realtime.store_snapshots import StoreSnapshot, snapshot_for, store_snapshot
from smbc.settings.store_settings import StoreSettings


def make_store(backend_db: Database) -> int:
    with backend_db.session() as s:
        store = add_store(s, "snap123")
        s.add(
            SalesmanagoAccount(
                store_id=store.id,
                endpoint="https://app3.salesmanago.com",
                client_id="cid",
                api_key="key",
                sha="sha",
                login_email="login@shop.test",
                owners=["login@shop.test", "owner@shop.test"],
                auth_mode="login",
            )
        )
        return store.id


def snapshot(backend_db: Database, store_id: int) -> StoreSnapshot:
    found = snapshot_for(backend_db, store_id)  # as a worker's batch gets it
    assert found is not None
    return found


def test_an_unchanged_store_reuses_its_snapshot(backend_db: Database) -> None:
    store_id = make_store(backend_db)
    first = snapshot(backend_db, store_id)
    assert first.store.access_token == "token"
    assert snapshot(backend_db, store_id) is first


def test_a_saved_setting_is_seen_by_the_next_batch(backend_db: Database) -> None:
    store_id = make_store(backend_db)
    assert snapshot(backend_db, store_id).credentials.owner == "login@shop.test"  # type: ignore[union-attr]
    save_settings(
        backend_db, store_id, StoreSettings(contact_owner="owner@shop.test", tags_registration=["new"])
    )
    after = snapshot(backend_db, store_id)
    assert after.settings.tags_registration == ["new"]
    assert after.credentials.owner == "owner@shop.test"  # type: ignore[union-attr]


def test_a_pause_and_new_credentials_are_seen_by_the_next_batch(backend_db: Database) -> None:
    store_id = make_store(backend_db)
    snapshot(backend_db, store_id)
    with backend_db.session() as s:
        s.execute(update(Store).where(Store.id == store_id).values(sync_paused_reason="logged out"))
    assert snapshot(backend_db, store_id).store.sync_paused_reason == "logged out"
    with backend_db.session() as s:
        account = s.query(SalesmanagoAccount).filter_by(store_id=store_id).one()
        account.api_key = "rotated"
    assert snapshot(backend_db, store_id).credentials.api_key == "rotated"  # type: ignore[union-attr]


def test_a_logged_out_store_has_the_credentials_error_instead(backend_db: Database) -> None:
    store_id = make_store(backend_db)
    snapshot(backend_db, store_id)
    with backend_db.session() as s:
        s.execute(delete(SalesmanagoAccount).where(SalesmanagoAccount.store_id == store_id))
    credentials = snapshot(backend_db, store_id).credentials
    assert isinstance(credentials, RemoteCallError) and credentials.outcome is Outcome.CREDENTIALS


def test_no_such_store_has_no_snapshot(backend_db: Database) -> None:
    with backend_db.session() as s:
        assert store_snapshot(s, 999_999) is None
