"""Planning the storefront scripts: exactly one of ours per selected channel, nothing else touched."""

from __future__ import annotations

from typing import Any

import pytest

from smbc.db.models import Store
from smbc.monitoring.models import MonitoringScript
from smbc.monitoring.scripts import (
    MAX_APP_SCRIPTS,
    SCRIPT_NAME,
    Account,
    TooManyScripts,
    check_script_cap,
    describe_status,
    plan_scripts,
    script_body,
    selected_channel_ids,
    wanted_scripts,
)
from smbc.settings.store_settings import StoreSettings

ACCOUNT = Account(client_id="cid", endpoint="app2.salesmanago.pl", smapp=None)


def store(channels: list[dict[str, Any]] | None = None) -> Store:
    return Store(id=1, hash="abc", channels=channels or [], sites=[], info={})


def live(uuid: str, body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, **changes, "uuid": uuid, "date_created": "2026-01-01T00:00:00Z"}


def wanted(*channels: int, **settings: Any) -> dict[int, dict[str, Any]]:
    return wanted_scripts(
        channels, StoreSettings(**settings), ACCOUNT, store_hash="abc", app_url="https://app.example"
    )


def test_script_fields_are_what_the_issue_asks_for() -> None:
    body = wanted(3, monitoring_consent_category="targeting")[3]
    assert body["kind"] == "script_tag" and body["location"] == "footer"
    assert body["visibility"] == "storefront" and body["auto_uninstall"] is True
    assert body["consent_category"] == "targeting" and body["channel_id"] == 3
    assert body["load_method"] == "default" and body["name"] == SCRIPT_NAME and body["description"]
    assert body["html"].startswith("<script>")


def test_nothing_live_creates_one_per_channel() -> None:
    plan = plan_scripts(wanted(1, 2), [])
    assert [b["channel_id"] for b in plan.create] == [1, 2]
    assert plan.update == [] and plan.delete == []


def test_matching_live_scripts_need_nothing() -> None:
    want = wanted(1, 2)
    assert plan_scripts(want, [live("u1", want[1]), live("u2", want[2])]).empty


def test_a_flag_change_updates_in_place() -> None:
    before, after = wanted(1), wanted(1, monitoring_banners=True)
    plan = plan_scripts(after, [live("u1", before[1])])
    assert plan.update == [("u1", after[1])] and not plan.create and not plan.delete


def test_a_consent_category_changed_in_script_manager_is_put_back() -> None:
    want = wanted(1)
    plan = plan_scripts(want, [live("u1", want[1], consent_category="essential")])
    assert plan.update == [("u1", want[1])]


def test_unselected_channels_and_duplicates_are_deleted_and_foreign_scripts_kept() -> None:
    want = wanted(1)
    foreign = {"uuid": "f", "name": "Someone else's", "channel_id": 2}
    scripts = [live("u1", want[1]), live("dup", want[1]), live("u2", wanted(2)[2]), foreign]
    plan = plan_scripts(want, scripts)
    assert plan.delete == ["dup", "u2"] and not plan.create and not plan.update


def test_monitoring_off_removes_every_script_of_ours() -> None:
    want = wanted(1, 2)
    off = StoreSettings(monitoring_enabled=False)
    assert selected_channel_ids(store(), off) == []
    assert plan_scripts({}, [live("u1", want[1]), live("u2", want[2])]).delete == ["u1", "u2"]


def test_all_storefronts_means_active_storefront_channels_only() -> None:
    channels = [
        {"id": 1, "type": "storefront", "status": "active", "name": "Main"},
        {"id": 2, "type": "storefront", "status": "prelaunch", "name": "Soon"},
        {"id": 3, "type": "storefront", "status": "inactive", "name": "Old"},
        {"id": 4, "type": "marketplace", "status": "active", "name": "Amazon"},
    ]
    assert selected_channel_ids(store(channels), StoreSettings()) == [1, 2]
    assert selected_channel_ids(store(channels), StoreSettings(monitoring_channels=[2, 1, 2])) == [1, 2]
    # A store whose channels were never read still has its default storefront.
    assert selected_channel_ids(store([]), StoreSettings()) == [1]


def test_more_than_ten_scripts_is_a_clear_error() -> None:
    check_script_cap(list(range(1, MAX_APP_SCRIPTS + 1)))
    with pytest.raises(TooManyScripts, match="at most 10"):
        check_script_cap(list(range(1, MAX_APP_SCRIPTS + 2)))
    with pytest.raises(TooManyScripts, match="2 already used"):
        check_script_cap(list(range(1, 10)), other_scripts=2)


def test_status_tells_missing_from_never_installed_and_changed() -> None:
    want = wanted(1, 2, 3)
    rows = {1: MonitoringScript(channel_id=1), 2: MonitoringScript(channel_id=2)}
    channels = [{"id": 1, "name": "Main", "type": "storefront", "status": "active"}]
    status = describe_status(
        store(channels), want, [live("u1", want[1], html="<script>tampered</script>")], rows
    )
    states = {c.channel_id: c.state for c in status.channels}
    assert states == {1: "outdated", 2: "missing", 3: "not_installed"}
    assert "missing on channel 2" in status.problems and "not installed on channel 3" in status.problems
    assert (
        status.channels[0].channel_name == "Main" and status.channels[0].html == "<script>tampered</script>"
    )
    assert status.restorable


def test_status_all_live_has_no_problems() -> None:
    want = wanted(1)
    status = describe_status(store(), want, [live("u1", want[1])], {1: MonitoringScript(channel_id=1)})
    assert status.problems == [] and not status.restorable
    assert status.channels[0].html == want[1]["html"]


def test_script_body_is_stable() -> None:
    assert script_body(1, "<script></script>", "analytics") == script_body(
        1, "<script></script>", "analytics"
    )
