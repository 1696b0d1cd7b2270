"""`smbc activity --store HASH --order N | --customer N | --email E | --cart ID [--json]` against the
sandbox: a real checkout, then "what happened to it?"."""

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


def test_an_order_a_customer_an_email_and_a_cart_each_tell_their_story(env: RealtimeEnv) -> None:
    customer = env.storefront.register("eve@example.com", "Eve", "Doe", newsletter=True)
    cart = env.storefront.add_to_cart(product_id=77, quantity=1, customer_id=customer["id"])
    env.settle()
    order = env.storefront.checkout(cart["id"], customer_id=customer["id"])
    env.settle()

    shown = runner.invoke(app, ["activity", "--store", env.store_hash, "--order", str(order["id"]), "--json"])
    assert shown.exit_code == 0, shown.output
    story = json.loads(shown.output)
    assert story["entity"] == f"order {order['id']}"
    deliveries = [e for e in story["entries"] if e["kind"] == "delivery"]
    assert {e["what"].split(" ")[0] for e in deliveries} >= {
        "store/order/created",
        "store/order/statusUpdated",
    }
    assert sum(e["reason"].startswith("PURCHASE sent (event ") for e in deliveries) == 1
    others = [e["reason"] for e in deliveries if not e["reason"].startswith("PURCHASE sent")]
    # The others: after it, or while another worker was sending it, or before the order was paid, or
    # handled with it in one drain's batch.
    expected = (
        "PURCHASE already sent for",
        f"PURCHASE for {order['id']} is being sent by",
        "status 0 ",
        "coalesced with delivery ",
    )
    assert all(r.startswith(expected) for r in others), others
    assert any(
        e["kind"] == "ledger" and e["what"] == f"PURCHASE of order {order['id']}" for e in story["entries"]
    )
    assert any(
        e["kind"] == "call" and "/api/v3/integration/upsert" in e["what"] for e in story["entries"]
    ) or any(e["kind"] == "call" and "salesmanago" in e["what"] for e in story["entries"])
    times = [e["at"] for e in story["entries"]]
    assert times == sorted(times)

    by_email = runner.invoke(app, ["activity", "--store", env.store_hash, "--email", "EVE@example.com"])
    assert by_email.exit_code == 0, by_email.output
    assert "# Everything about email eve@example.com" in by_email.output
    for seen in (
        "store/customer/created",
        "store/subscriber/created",
        "store/cart/created",
        "# Consent history",
    ):
        assert seen in by_email.output

    by_customer = json.loads(
        runner.invoke(
            app, ["activity", "--store", env.store_hash, "--customer", str(customer["id"]), "--json"]
        ).output
    )
    assert {e["ref"] for e in by_customer["entries"]} >= {
        e["ref"] for e in story["entries"] if e["kind"] != "call"
    }

    by_cart = json.loads(
        runner.invoke(app, ["activity", "--store", env.store_hash, "--cart", cart["id"], "--json"]).output
    )
    assert any(e["what"].startswith("store/cart/created") for e in by_cart["entries"])
    assert any(
        e["what"] == f"cart {cart['id']} window" and e["status"] == "closed" for e in by_cart["entries"]
    )


def test_bad_searches_change_nothing_and_say_why(env: RealtimeEnv) -> None:
    both = runner.invoke(app, ["activity", "--store", env.store_hash, "--order", "1", "--email", "a@b.c"])
    assert both.exit_code == 2 and "Give one of --order, --customer, --email, --cart." in both.output
    bad = runner.invoke(app, ["activity", "--store", env.store_hash, "--customer", "x1"])
    assert bad.exit_code == 2 and "customer: must be a customer id" in bad.output
    unknown = runner.invoke(app, ["activity", "--store", "nosuchstore", "--order", "1"])
    assert unknown.exit_code == 1 and "no store with hash 'nosuchstore'" in unknown.output
    nothing = runner.invoke(app, ["activity", "--store", env.store_hash, "--order", "424242"])
    assert nothing.exit_code == 0 and "# Nothing about order 424242" in nothing.output
