"""`smbc reconcile --store HASH` and `smbc activity --store HASH [--failed]` against the sandbox."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from realtime_env import RealtimeEnv, realtime_env_for_cli
from typer.testing import CliRunner

from smbc.cli.main import app
from smbc.core.config import Settings

runner = CliRunner()


@pytest.fixture
def env(backend_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[RealtimeEnv]:
    with realtime_env_for_cli(backend_settings, monkeypatch) as environment:
        yield environment


def test_reconcile_command_sends_what_webhooks_lost_and_activity_shows_it(env: RealtimeEnv) -> None:
    env.configure(ignored_domains="blocked.example")
    env.bc.webhooks.drop_next(1000)
    env.storefront.register("missed@example.com", "Miss", "Ed")
    env.storefront.register("nobody@blocked.example", "No", "Body")
    env.settle()
    assert env.contact("missed@example.com") is None

    env.clock.advance(60)
    result = runner.invoke(app, ["reconcile", "--store", env.store_hash])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["customers"] == 2 and report["deliveries"] == 2 and report["error"] == ""
    assert env.contact("missed@example.com") is not None  # processed by the command itself
    assert env.contact("nobody@blocked.example") is None

    shown = runner.invoke(app, ["activity", "--store", env.store_hash])
    assert shown.exit_code == 0, shown.output
    assert "store/customer/created" in shown.output and "reconcile" in shown.output
    assert "ignored e-mail domain" in shown.output and "/api/contact/upsert" in shown.output


def test_activity_failed_lists_only_failures_and_unknown_store_is_an_error(env: RealtimeEnv) -> None:
    env.storefront.register("fine@example.com", "Fi", "Ne")
    env.settle()
    failed = runner.invoke(app, ["activity", "--store", env.store_hash, "--failed"])
    assert failed.exit_code == 0 and "store/customer/created" not in failed.output
    unknown = runner.invoke(app, ["activity", "--store", "nosuchstore"])
    assert unknown.exit_code == 1 and "no store with hash 'nosuchstore'" in unknown.output
    assert runner.invoke(app, ["reconcile", "--store", "nosuchstore"]).exit_code == 1
