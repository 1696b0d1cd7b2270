"""The consent plan without a network: the pure plan (`consent_plan_for`), the export's batch form
(`plan_consent_batch`, double opt-in an explicit choice) and the ledger read that feeds it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from smbc.consent.plan import consent_plan_for, last_known_opt_ins, plan_consent_batch
from smbc.core.config import Settings
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.ledgers import SyncedContact
from smbc.mapping import records as mapping
from smbc.mapping.rules import ConsentFlags, consent_flags
from smbc.settings.store_settings import StoreSettings

STATES = (True, False, None)
WITH_DOUBLE_OPT_IN = StoreSettings(
    tags_newsletter=["NEWS"],
    double_opt_in_enabled=True,
    double_opt_in_template_id="tpl",
    double_opt_in_account_id="acc",
    double_opt_in_subject="Confirm",
)


@pytest.mark.parametrize("subscribed", STATES)
@pytest.mark.parametrize("last_known", STATES)
def test_the_flags_are_the_rules_flags(subscribed: bool | None, last_known: bool | None) -> None:
    for double_opt_in in (True, False):
        plan = consent_plan_for(
            subscribed, last_known, settings=WITH_DOUBLE_OPT_IN, language="EN", double_opt_in=double_opt_in
        )
        assert plan.flags == consent_flags(subscribed, last_known)
        assert plan.tags == (("NEWS",) if plan.flags.force_opt_in else ())
        assert (plan.double_opt_in is not None) == (plan.flags.force_opt_in and double_opt_in)


def test_a_batch_plans_each_email_and_double_opt_in_is_the_callers_choice() -> None:
    subscribed = {"new@x.co": True, "left@x.co": False, "same@x.co": True, "quiet@x.co": None}
    last_known = {"left@x.co": True, "same@x.co": True}
    confirmed = plan_consent_batch(
        subscribed, last_known, settings=WITH_DOUBLE_OPT_IN, language="EN", double_opt_in=True
    )
    direct = plan_consent_batch(
        subscribed, last_known, settings=WITH_DOUBLE_OPT_IN, language="EN", double_opt_in=False
    )
    assert set(confirmed) == set(direct) == set(subscribed)
    assert confirmed["new@x.co"].flags == direct["new@x.co"].flags == ConsentFlags(force_opt_in=True)
    assert confirmed["new@x.co"].double_opt_in == mapping.DoubleOptIn(
        language="EN", template_id="tpl", account_id="acc", subject="Confirm"
    )
    assert direct["new@x.co"].double_opt_in is None
    assert confirmed["left@x.co"].flags == ConsentFlags(force_opt_out=True)
    assert confirmed["left@x.co"].opted_in is False
    for email in ("same@x.co", "quiet@x.co"):
        assert not confirmed[email].flags.changes and confirmed[email].opted_in is None


def test_double_opt_in_asked_for_but_off_in_the_settings_opts_in_directly() -> None:
    [plan] = plan_consent_batch(
        {"a@x.co": True}, {}, settings=StoreSettings(), language=None, double_opt_in=True
    ).values()
    assert plan.flags.force_opt_in and plan.double_opt_in is None


def test_an_applied_plan_is_what_the_contact_sends() -> None:
    plan = consent_plan_for(True, None, settings=WITH_DOUBLE_OPT_IN, language="EN", double_opt_in=True)
    payload = plan.apply(mapping.ContactUpsert(email="a@x.co", owner="o@x.co", tags=("REG",))).to_payload()
    assert payload["forceOptIn"] is True and payload["useApiDoubleOptIn"] is True
    assert payload["tags"] == ["REG", "NEWS"]


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    try:
        yield init_runtime(settings, migrate=True).db
    finally:
        close_runtime()


def test_last_known_opt_ins_reads_the_ledger_in_one_query(db: Database) -> None:
    with db.session() as s:
        store = Store(hash="abc123", access_token="t", webhook_secret="x")
        s.add(store)
        s.flush()
        for email, opted_in in (("in@x.co", True), ("out@x.co", False), ("unsure@x.co", None)):
            s.add(SyncedContact(store_id=store.id, email=email, payload_hash="", opted_in=opted_in))
        store_id = store.id
    with db.session() as s:
        known = last_known_opt_ins(s, store_id, ["in@x.co", "out@x.co", "unsure@x.co", "never@x.co"])
    assert known == {"in@x.co": True, "out@x.co": False, "unsure@x.co": None}
