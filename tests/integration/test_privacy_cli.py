"""`smbc privacy export|forget --store HASH --email E` after a real checkout in the sandbox."""

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
def env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[RealtimeEnv]:
    with realtime_env_for_cli(settings, monkeypatch) as environment:
        yield environment


def test_export_then_forget_a_buyer(env: RealtimeEnv) -> None:
    customer = env.storefront.register("ida.nowak@example.com", "Ida", "Nowak", newsletter=True)
    cart = env.storefront.add_to_cart(product_id=77, quantity=1, customer_id=customer["id"])
    order = env.storefront.checkout(cart["id"], customer_id=customer["id"])
    env.settle()
    person = ["--store", env.store_hash, "--email", "Ida.Nowak@example.com"]

    exported = runner.invoke(app, ["privacy", "export", *person])
    assert exported.exit_code == 0, exported.output
    held = json.loads(exported.output)
    assert held["email"] == "ida.nowak@example.com" and held["forgotten"] is False
    assert [(e["kind"], e["key"]) for e in held["sent_events"]] == [("PURCHASE", str(order["id"]))]
    assert held["deliveries"] and held["calls"] and held["contacts"]

    declined = runner.invoke(app, ["privacy", "forget", *person], input="n\n")
    assert declined.exit_code == 1 and "Nothing was erased." in declined.output
    assert json.loads(runner.invoke(app, ["privacy", "export", *person]).output)["deliveries"]

    forgot = runner.invoke(app, ["privacy", "forget", *person, "--yes"])
    assert forgot.exit_code == 0, forgot.output
    summary = json.loads(forgot.output)
    assert summary["erased"]["webhook_deliveries"] == len(held["deliveries"])
    assert summary["kept_under_keyed_hash"]["sent_events"] == 1

    after = json.loads(runner.invoke(app, ["privacy", "export", *person]).output)
    assert after["forgotten"] is True and after["deliveries"] == [] and after["calls"] == []
    assert "ida.nowak" not in json.dumps(after["contacts"] + after["sent_events"])

    bad = runner.invoke(app, ["privacy", "forget", "--store", env.store_hash, "--email", "nobody", "--yes"])
    assert bad.exit_code == 2 and "email: must be an e-mail address" in bad.output
    unknown = runner.invoke(app, ["privacy", "export", "--store", "nosuchstore", "--email", "a@b.co"])
    assert unknown.exit_code == 1 and "no store with hash 'nosuchstore'" in unknown.output
