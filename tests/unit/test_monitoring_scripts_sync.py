"""Applying the plan: BigCommerce ends up with exactly the wanted scripts, our table tracks them, and
a failure part-way keeps what succeeded (the next save continues)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from sqlalchemy import select

from smbc.core import encryption
from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.monitoring import scripts
from smbc.monitoring.models import MonitoringScript
from smbc.monitoring.scripts import (
    SCRIPT_NAME,
    Account,
    TooManyScripts,
    install_on_new_channel,
    live_status,
    sync_store,
)
from smbc.settings.store_settings import StoreSettings

ACCOUNT = Account(client_id="cid-1", endpoint="app2.salesmanago.pl", smapp="3")
APP_URL = "https://app.example"


class MemoryScripts:
    """The Scripts API as BigCommerce behaves for one app: CRUD, 10 scripts at most."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail_on: str | None = None
        self._ids = itertools.count(1)

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_on == name:
            raise RemoteCallError(Outcome.RETRY, "BigCommerce POST /v3/content/scripts: 500", status=500)

    def scripts(self) -> list[dict[str, Any]]:
        self._call("list")
        return [dict(v) for v in self.items.values()]

    def create_script(self, body: dict[str, Any]) -> dict[str, Any]:
        self._call("create")
        if len(self.items) >= 10:
            raise RemoteCallError(Outcome.INVALID, "limit", status=422)
        uuid = f"00000000-0000-4000-8000-{next(self._ids):012d}"
        self.items[uuid] = {**body, "uuid": uuid}
        return dict(self.items[uuid])

    def update_script(self, uuid: str, body: dict[str, Any]) -> dict[str, Any]:
        self._call("update")
        self.items[uuid].update(body)
        return dict(self.items[uuid])

    def delete_script(self, uuid: str) -> None:
        self._call("delete")
        del self.items[uuid]

    def by_channel(self) -> dict[int, dict[str, Any]]:
        return {s["channel_id"]: s for s in self.items.values()}


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    from cryptography.fernet import Fernet

    encryption.configure([Fernet.generate_key().decode()])
    database = Database(f"sqlite:///{tmp_path / 'sync.db'}")
    database.upgrade()
    yield database
    database.dispose()


def channels(*ids: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"Shop {i}", "type": "storefront", "status": "active"} for i in ids]


@pytest.fixture
def store(db: Database) -> Store:
    with db.session() as s:
        row = Store(hash="abc", status="installed", channels=channels(1, 2, 3), sites=[], info={})
        s.add(row)
    return row


@contextmanager
def saved(account: Account | None = ACCOUNT, **settings: Any) -> Iterator[None]:
    """The saved settings and SALESmanago account the monitoring functions read."""
    with (
        mock.patch.object(scripts, "load_account", return_value=account),
        mock.patch.object(scripts, "load_settings", return_value=StoreSettings(**settings)),
    ):
        yield


def sync(
    db: Database, store: Store, api: MemoryScripts, account: Account | None = ACCOUNT, **settings: Any
) -> Any:
    with saved(account, **settings):
        return sync_store(db, store.id, app_url=APP_URL, api=api)


def tracked(db: Database) -> dict[int, str]:
    with db.session() as s:
        return {r.channel_id: r.script_uuid for r in s.scalars(select(MonitoringScript))}


def test_save_puts_one_script_on_every_active_storefront_and_tracks_it(db: Database, store: Store) -> None:
    api = MemoryScripts()
    result = sync(db, store, api)
    assert result.ok and result.created == 3 and len(result.live) == 3
    live = api.by_channel()
    assert sorted(live) == [1, 2, 3]
    assert all(s["name"] == SCRIPT_NAME and s["consent_category"] == "analytics" for s in live.values())
    assert 'var _smid = "cid-1";' in live[2]["html"] and "channel = 2" in live[2]["html"]
    assert tracked(db) == {c: s["uuid"] for c, s in live.items()}
    # Saving again with nothing changed calls nothing but the two reads.
    api.calls.clear()
    assert sync(db, store, api).created == 0 and api.calls == ["list", "list"]


def test_flags_update_in_place_selection_deletes_and_off_removes_all(db: Database, store: Store) -> None:
    api = MemoryScripts()
    sync(db, store, api)
    uuids = {c: s["uuid"] for c, s in api.by_channel().items()}
    result = sync(db, store, api, monitoring_popups=True, monitoring_channels=[1, 3])
    assert (result.created, result.updated, result.deleted) == (0, 2, 1)
    live = api.by_channel()
    assert sorted(live) == [1, 3] and live[1]["uuid"] == uuids[1]
    assert "/dynamic/cid-1/popups.js" in live[1]["html"]
    assert tracked(db) == {1: uuids[1], 3: uuids[3]}
    result = sync(db, store, api, monitoring_enabled=False)
    assert result.deleted == 2 and api.items == {} and tracked(db) == {}


def test_a_script_deleted_in_script_manager_is_reported_and_restored(db: Database, store: Store) -> None:
    api = MemoryScripts()
    sync(db, store, api)
    del api.items[api.by_channel()[2]["uuid"]]  # the merchant deletes it in Script Manager
    with saved():
        status = live_status(db, store.id, app_url=APP_URL, api=api)
    assert status is not None
    assert status.problems == ["missing on channel 2"] and status.restorable
    assert sync(db, store, api).created == 1
    assert sorted(api.by_channel()) == [1, 2, 3]


def test_more_than_ten_storefronts_is_refused_before_any_call(db: Database) -> None:
    with db.session() as s:
        big = Store(hash="big", status="installed", channels=channels(*range(1, 12)), sites=[], info={})
        s.add(big)
    api = MemoryScripts()
    with pytest.raises(TooManyScripts, match="at most 10"):
        sync(db, big, api)
    assert api.calls == []


def test_a_failure_part_way_keeps_what_succeeded(db: Database, store: Store) -> None:
    api = MemoryScripts()
    sync(db, store, api, monitoring_channels=[1])

    original = api.create_script
    created: list[int] = []

    def flaky_create(body: dict[str, Any]) -> dict[str, Any]:
        if created:
            raise RemoteCallError(Outcome.RETRY, "BigCommerce POST /v3/content/scripts: 503", status=503)
        created.append(body["channel_id"])
        return original(body)

    api.create_script = flaky_create  # type: ignore[method-assign]
    result = sync(db, store, api)
    assert not result.ok and "503" in (result.error or "") and result.failure is not None
    assert sorted(api.by_channel()) == [1, 2] and sorted(tracked(db)) == [1, 2]
    api.create_script = original  # type: ignore[method-assign]
    assert sync(db, store, api).created == 1 and sorted(tracked(db)) == [1, 2, 3]


def test_without_a_salesmanago_account_nothing_is_installed(db: Database, store: Store) -> None:
    api = MemoryScripts()
    sync(db, store, api)
    result = sync(db, store, api, account=None)
    assert result.deleted == 3 and api.items == {}


class MemoryStore(MemoryScripts):
    """Scripts plus the store's channels and sites, as `store/channel/created` needs them."""

    def __init__(self, channel_ids: list[int], fail_reads: bool = False) -> None:
        super().__init__()
        self.channel_list = channels(*channel_ids)
        self.fail_reads = fail_reads

    def channels(self) -> list[dict[str, Any]]:
        self._call("channels")
        if self.fail_reads:
            raise RemoteCallError(Outcome.RETRY, "BigCommerce GET /v3/channels: 503", status=503)
        return self.channel_list

    def sites(self) -> list[dict[str, Any]]:
        self._call("sites")
        return [
            {"id": 999 + c["id"], "channel_id": c["id"], "url": f"https://s{c['id']}.example"}
            for c in self.channel_list
        ]


def add_channel(db: Database, store: Store, api: MemoryStore, channel_id: int, **settings: Any) -> None:
    with saved(**settings):
        install_on_new_channel(db, store.id, channel_id, app_url=APP_URL, api=api)


def test_a_new_storefront_gets_the_code_only_when_all_are_chosen(db: Database, store: Store) -> None:
    api = MemoryStore([1, 2, 3, 4])
    sync(db, store, api)
    add_channel(db, store, api, 4)
    assert sorted(api.by_channel()) == [1, 2, 3, 4]
    with db.session() as s:  # the store row learnt the new channel and its site (cart-link origins)
        assert [c["id"] for c in s.get(Store, store.id).channels] == [1, 2, 3, 4]
        assert any(site["url"] == "https://s4.example" for site in s.get(Store, store.id).sites)
    api.channel_list = channels(1, 2, 3, 4, 5)
    api.calls.clear()
    add_channel(db, store, api, 5, monitoring_channels=[1])
    assert api.calls == [] and 5 not in api.by_channel()


def test_a_new_storefront_is_tried_again_when_bigcommerce_is_down(db: Database, store: Store) -> None:
    api = MemoryStore([1, 2, 3], fail_reads=True)
    with pytest.raises(RemoteCallError) as err:
        add_channel(db, store, api, 3)
    assert err.value.outcome.retryable
