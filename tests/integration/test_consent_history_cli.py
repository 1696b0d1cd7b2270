""" "What happened to x@y": the consent history from the CLI after a subscription in BigCommerce, an
opt-out callback from SALESmanago and a contacts export that caught a change the webhooks missed."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from realtime_env import RealtimeEnv, realtime_env_for_cli
from test_consent_e2e import paste_callback_urls, settle_all
from typer.testing import CliRunner

from smbc.cli.main import app
from smbc.core.config import Settings

runner = CliRunner()
EMAIL = "story@example.com"


@pytest.fixture
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[RealtimeEnv]:
    with realtime_env_for_cli(settings, monkeypatch) as environment:
        yield environment


def test_a_subscription_a_callback_and_an_export_each_leave_their_change_in_order(env: RealtimeEnv) -> None:
    paste_callback_urls(env)
    env.storefront.register(EMAIL, "Story", "Teller", newsletter=True)
    settle_all(env)
    env.clock.advance(60)
    env.sm.opt_out(env.client_id, EMAIL)  # the unsubscribe link in a SALESmanago e-mail
    settle_all(env)
    subscriber = env.bc.store(env.store_hash).subscriber_by_email(EMAIL)
    assert subscriber is not None and subscriber.consents == []  # written back to BigCommerce
    env.clock.advance(60)
    subscriber.consents = ["marketing_newsletter"]  # subscribed again, and the webhook never came
    day = env.clock.now().date().isoformat()
    exported = runner.invoke(
        app, ["export", "contacts", "--store", env.store_hash, "--from", day, "--to", day]
    )
    assert exported.exit_code == 0, exported.output

    shown = runner.invoke(app, ["activity", "--store", env.store_hash, "--email", EMAIL.upper(), "--json"])
    assert shown.exit_code == 0, shown.output
    story = json.loads(shown.output)
    history = [(c["source"], c["change"], c["ref"].split(":")[0]) for c in story["consent_history"]]
    assert history == [
        ("bigcommerce", "opted_in", "delivery"),
        ("salesmanago_callback", "opted_out", "consent"),
        ("export", "opted_in", "export"),
    ]
    subscribed, opted_out, export = story["consent_history"]
    assert subscribed["sent"] == "/api/contact/upsert: forceOptIn"
    assert opted_out["sent"].startswith("BigCommerce subscriber to be opted out (write-back consent:")
    assert export["sent"] == "/api/contact/batchupsertv2: forceOptIn"
    assert subscribed["at"] < opted_out["at"] < export["at"]
    # In the timeline too, in time order with the deliveries, calls and ledger rows.
    assert [e["ref"] for e in story["entries"] if e["kind"] == "consent"] == [
        f"consent_change:{n}" for n in (1, 2, 3)
    ]
    assert [e["at"] for e in story["entries"]] == sorted(e["at"] for e in story["entries"])

    table = runner.invoke(app, ["activity", "--store", env.store_hash, "--email", EMAIL])
    assert "# Consent history" in table.output and "SALESmanago callback" in table.output
