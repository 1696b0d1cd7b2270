"""SALESmanago's newer double opt-in style, from the merchant's setting to the fake SALESmanago: set
from the CLI and the Account tab with the same checks, and sent with a registration that subscribes."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from realtime_env import RealtimeEnv
from sm_account_helpers import add_store, bearer, connect_account, make_app, store_row
from sqlalchemy import select
from test_settings_cli import cli_env  # noqa: F401  (the CLI's store and database, as a fixture)
from typer.testing import CliRunner

from smbc.cli.main import app
from smbc.core.config import Settings
from smbc.db.session import Database
from smbc.settings.models import SettingsChange
from smbc.settings.store_settings import load_store_settings

EMAIL_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"
OLDER_KEYS = {"apiDoubleOptInEmailTemplateId", "apiDoubleOptInEmailAccountId", "apiDoubleOptInEmailSubject"}
runner = CliRunner()


@pytest.fixture
def env(settings: Settings) -> Iterator[RealtimeEnv]:
    with RealtimeEnv(settings) as environment:
        yield environment


def test_registration_subscribing_sends_the_confirmation_email_by_its_id(env: RealtimeEnv) -> None:
    env.configure(
        **{
            "double_opt_in.enabled": "true",
            "double_opt_in.email_id": EMAIL_ID,
            "double_opt_in.language": "de",
            # Filled in from before: the e-mail id takes precedence and these are not sent.
            "double_opt_in.template_id": "tpl-7",
            "double_opt_in.account_id": "acc-3",
            "double_opt_in.subject": "Please confirm",
        }
    )
    calls = len(env.sm.calls)
    env.storefront.register("newer@example.com", "New", "Style", newsletter=True)
    env.settle()
    sent = [
        c["body"]
        for c in env.sm.calls[calls:]
        if c["body"].get("useApiDoubleOptIn") and c["body"]["contact"]["email"] == "newer@example.com"
    ]
    assert sent, "no contact upsert asked for a confirmation e-mail"
    for body in sent:
        assert (body["doubleOptInEmailId"], body["doubleOptInLanguage"]) == (EMAIL_ID, "DE")
        assert not OLDER_KEYS & set(body) and body["forceOptIn"] is True
    [mail] = env.sm.confirmation_emails(env.client_id)
    assert (mail["email"], mail["doubleOptInEmailId"], mail["templateId"]) == (
        "newer@example.com",
        EMAIL_ID,
        None,
    )
    assert env.contact("newer@example.com")["optedIn"] is False  # until the contact confirms


def test_cli_sets_the_email_id_and_refuses_a_wrong_one(cli_env: Database) -> None:  # noqa: F811
    bad = runner.invoke(app, ["settings", "set", "--store", "abc123", "double_opt_in.email_id=12345"])
    assert bad.exit_code == 1 and "36 characters" in bad.output
    alone = runner.invoke(app, ["settings", "set", "--store", "abc123", "double_opt_in.language=pl"])
    assert alone.exit_code == 1 and "confirmation e-mail ID" in alone.output
    with cli_env.session() as s:
        assert s.scalars(select(SettingsChange)).all() == []  # nothing changed
    good = runner.invoke(
        app,
        [
            "settings",
            "set",
            "--store",
            "abc123",
            f"double_opt_in.email_id={EMAIL_ID}",
            "double_opt_in.language=pl",
        ],
    )
    assert good.exit_code == 0, good.output
    shown = runner.invoke(app, ["settings", "show", "--store", "abc123", "--json"])
    assert f'"double_opt_in.email_id": "{EMAIL_ID}"' in shown.output
    assert '"double_opt_in.language": "PL"' in shown.output


def test_account_tab_explains_both_styles_and_checks_the_email_id(settings: Settings) -> None:
    with TestClient(make_app(settings)) as client:
        token = add_store(client.app)
        connect_account(client.app)
        html = client.get("/app/tabs/account", headers=bearer(token)).text
        assert (
            '<label for="double_opt_in_email_id">' in html and '<label for="double_opt_in_language">' in html
        )
        assert "by its ID" in html and "The older way" in html and "not used" in html
        form = {
            "double_opt_in_enabled": "on",
            "double_opt_in_email_id": "not-an-id",
            "double_opt_in_language": "x",
        }
        refused = client.post("/app/account/settings", headers=bearer(token), data=form)
        assert refused.status_code == 422
        assert "36 characters" in _field_error(refused.text, "double_opt_in_email_id")
        assert "two-letter" in _field_error(refused.text, "double_opt_in_language")
        with client.app.state.runtime.db.session() as s:
            assert load_store_settings(s, store_row(client.app).id).double_opt_in_enabled is False
        form.update(double_opt_in_email_id=EMAIL_ID, double_opt_in_language="en")
        saved = client.post("/app/account/settings", headers=bearer(token), data=form)
        assert saved.status_code == 200, saved.text
        assert f'value="{EMAIL_ID}"' in saved.text and 'value="EN"' in saved.text


def _field_error(html: str, field: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field}-error">([^<]*)</p>', html)
    return match.group(1) if match else ""
