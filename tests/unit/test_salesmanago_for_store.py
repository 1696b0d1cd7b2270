"""account.credentials.salesmanago_client: stored (encrypted) credentials, the effective owner, call rows."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from smbc.account.credentials import salesmanago_client
from smbc.account.models import SalesmanagoAccount
from smbc.core import encryption
from smbc.core.remote_calls import Outcome, RemoteCall, RemoteCallError, record_call
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.salesmanago.client import record_calls_into
from smbc.settings.store_settings import save_store_settings


@pytest.fixture
def db(tmp_path: Path) -> Database:
    encryption.configure([Fernet.generate_key().decode()])
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    database.upgrade()
    return database


def test_for_store_not_connected_is_credentials(db: Database) -> None:
    with db.session() as s:
        store = Store(hash="abc")
        s.add(store)
        s.flush()
        with pytest.raises(RemoteCallError) as info:
            salesmanago_client(s, store, recorder=record_calls_into([].append, store.id))
        assert info.value.outcome is Outcome.CREDENTIALS


def test_for_store_uses_saved_owner_and_records_rows(db: Database, tmp_path: Path) -> None:
    bodies: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        return httpx.Response(200, json={"success": True, "contactId": "c-1"})

    with db.session() as s:
        store = Store(hash="abc")
        s.add(store)
        s.flush()
        s.add(
            SalesmanagoAccount(
                store_id=store.id,
                endpoint="https://app3.salesmanago.com",
                client_id="cid",
                api_key="secret-api-key",
                sha="secret-sha",
                login_email="login@x.com",
                owners=["login@x.com", "second@x.com"],
                auth_mode="login",
            )
        )
        save_store_settings(s, store.id, {"contact_owner": "second@x.com"}, "tester")
        http = httpx.Client(transport=httpx.MockTransport(handler))
        calls: list[dict[str, object]] = []
        recorder = record_calls_into(calls.append, store.id)
        client = salesmanago_client(s, store, recorder=recorder, http=http, context="delivery:1")
    assert client.upsert_contact({"contact": {"email": "a@b.c"}}) == "c-1"  # no transaction open
    assert json.loads(bodies[0])["owner"] == "second@x.com"
    with db.session() as s:
        for fields in calls:
            record_call(s, **fields)
    with db.session() as s:
        row = s.scalars(select(RemoteCall)).one()
        assert (row.service, row.endpoint, row.outcome, row.context) == (
            "salesmanago",
            "/api/contact/upsert",
            "success",
            "delivery:1",
        )
    raw = (tmp_path / "x.db").read_bytes() + (tmp_path / "x.db-wal").read_bytes()
    assert b"secret-api-key" not in raw and b"secret-sha" not in raw


def test_effective_owner_spelling_and_fallback() -> None:
    from smbc.account.credentials import effective_owner, owner_fell_back
    from smbc.settings.store_settings import StoreSettings

    account = SalesmanagoAccount(owners=["Boss@Shop.test", "login@x.com"], login_email="login@x.com")
    assert effective_owner(StoreSettings(contact_owner="boss@shop.test"), account) == "Boss@Shop.test"
    assert not owner_fell_back(StoreSettings(contact_owner="boss@shop.test"), account)
    assert effective_owner(StoreSettings(), account) == "login@x.com"
    gone = StoreSettings(contact_owner="left@x.com")
    assert effective_owner(gone, account) == "login@x.com" and owner_fell_back(gone, account)
