"""Newsletter consent without a network: the pure rules, the double opt-in claims (one confirmation
per subscription) and the callback's checks (token, store, e-mail) on a real database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from smbc.consent import callbacks, plan
from smbc.consent import double_opt_in as claims
from smbc.consent import service as consent
from smbc.consent.models import ConsentWriteBack, DoubleOptInClaim
from smbc.core.clock import FakeClock, set_clock
from smbc.core.config import Settings
from smbc.core.runtime import Runtime, close_runtime, init_runtime
from smbc.db.models import Store
from smbc.engine.ledgers import STALE_LOCK
from smbc.mapping import records as mapping
from smbc.mapping.rules import ConsentFlags, consent_flags
from smbc.settings.store_settings import StoreSettings

NEWSLETTER = "marketing_newsletter"


# -- pure rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subscribed", "last", "expected"),
    [
        (True, None, ConsentFlags(force_opt_in=True)),  # subscribes now
        (True, False, ConsentFlags(force_opt_in=True)),  # subscribes again
        (True, True, ConsentFlags()),  # already opted in: nothing changed (e.g. our own echo)
        (False, True, ConsentFlags(force_opt_out=True)),  # a known opt-in withdrawn
        (False, None, ConsentFlags()),  # a subscriber without consent says nothing
        (False, False, ConsentFlags()),  # already opted out (our own echo)
        (None, True, ConsentFlags()),  # an unticked box says nothing
        (None, None, ConsentFlags()),
    ],
)
def test_consent_flags_never_opt_in_by_accident(
    subscribed: bool | None, last: bool | None, expected: ConsentFlags
) -> None:
    assert consent_flags(subscribed, last) == expected


def test_the_subscriber_consents_hold_the_truth() -> None:
    assert plan.subscriber_consented({"consents": [NEWSLETTER, "abandoned_cart"]})
    assert not plan.subscriber_consented({"consents": ["abandoned_cart"]})
    assert not plan.subscriber_consented({"consents": []})
    assert not plan.subscriber_consented({"consents": None})


def test_consents_after_opt_in_and_opt_out() -> None:
    assert consent.consents_after("opt_in", []) == [NEWSLETTER]
    assert consent.consents_after("opt_in", ["abandoned_cart"]) == ["abandoned_cart", NEWSLETTER]
    assert consent.consents_after("opt_in", [NEWSLETTER]) is None  # idempotent: no write
    assert consent.consents_after("opt_out", [NEWSLETTER, "abandoned_cart"]) == []
    assert consent.consents_after("opt_out", []) is None
    with pytest.raises(ValueError, match="unknown consent action"):
        consent.consents_after("maybe", [])


def test_opted_in_in_salesmanago_only_when_explicitly_not_opted_out() -> None:
    assert plan.opted_in_in_salesmanago({"email": "a@b.co", "optedOut": False})
    assert not plan.opted_in_in_salesmanago({"email": "a@b.co", "optedOut": True})
    assert not plan.opted_in_in_salesmanago({"email": "a@b.co"})
    assert not plan.opted_in_in_salesmanago(None)


def test_double_opt_in_fields_follow_the_settings() -> None:
    assert plan.double_opt_in_for(StoreSettings(), "EN") is None
    bare = plan.double_opt_in_for(StoreSettings(double_opt_in_enabled=True), "PL")
    assert bare == mapping.DoubleOptIn(language="PL")
    full = StoreSettings(
        double_opt_in_enabled=True,
        double_opt_in_template_id=" 12 ",
        double_opt_in_account_id="34",
        double_opt_in_subject="Confirm",
    )
    doi = plan.double_opt_in_for(full, "EN")
    assert doi is not None
    payload = plan.ConsentPlan(flags=ConsentFlags(force_opt_in=True), double_opt_in=doi).apply(
        mapping.ContactUpsert(email="a@b.co")
    )
    body = payload.to_payload()
    assert body["useApiDoubleOptIn"] is True and body["forceOptIn"] is True
    assert (body["apiDoubleOptInEmailTemplateId"], body["apiDoubleOptInEmailAccountId"]) == ("12", "34")
    assert body["apiDoubleOptInEmailSubject"] == "Confirm" and body["doubleOptInLanguage"] == "EN"


def test_plan_applies_flags_tags_and_never_double_opt_in_without_opt_in() -> None:
    contact = mapping.ContactUpsert(email="a@b.co", tags=("REG",))
    opt_in = plan.ConsentPlan(flags=ConsentFlags(force_opt_in=True), tags=("NEWS",))
    body = opt_in.apply(contact).to_payload()
    assert body["forceOptIn"] is True and body["tags"] == ["REG", "NEWS"] and opt_in.opted_in is True
    opt_out = plan.ConsentPlan(
        flags=ConsentFlags(force_opt_out=True), double_opt_in=mapping.DoubleOptIn(language="EN")
    )
    body = opt_out.apply(contact).to_payload()
    assert body["forceOptOut"] is True and "useApiDoubleOptIn" not in body and opt_out.opted_in is False
    nothing = plan.ConsentPlan().apply(contact).to_payload()
    assert nothing["forceOptIn"] is False and nothing["forceOptOut"] is False
    assert plan.ConsentPlan().opted_in is None


def test_callback_token_comparison() -> None:
    assert callbacks.token_matches("s3cret", "s3cret")
    assert not callbacks.token_matches("s3cret", "s3cre")
    assert not callbacks.token_matches("s3cret", "")
    assert not callbacks.token_matches(None, "")  # a store without a secret matches nothing
    assert not callbacks.token_matches("", "")


# -- claims and callbacks on a database --------------------------------------------------------


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    previous = set_clock(FakeClock())
    try:
        yield init_runtime(settings, migrate=True)
    finally:
        close_runtime()
        set_clock(previous)


def make_store(runtime: Runtime, store_hash: str = "abc123", status: str = "installed") -> int:
    with runtime.db.session() as s:
        store = Store(hash=store_hash, access_token="t", callback_secret="cb-secret", status=status)
        s.add(store)
        s.flush()
        return store.id


def test_one_confirmation_claim_per_subscription_round(runtime: Runtime) -> None:
    db, store_id = runtime.db, make_store(runtime)
    now = FakeClock().now()
    assert claims.claim_double_opt_in(db, store_id, "a@b.co", owner="delivery:1", now=now) is None
    busy = claims.claim_double_opt_in(db, store_id, "a@b.co", owner="delivery:2", now=now)
    assert busy == "confirmation e-mail being requested by delivery:1"
    # The holder retrying its own delivery keeps the claim.
    assert claims.claim_double_opt_in(db, store_id, "a@b.co", owner="delivery:1", now=now) is None
    with db.session() as s:
        claims.mark_double_opt_in_sent(s, store_id, "a@b.co", "delivery:1", now)
    later = now + timedelta(days=1)
    sent = claims.claim_double_opt_in(db, store_id, "a@b.co", owner="delivery:3", now=later)
    assert sent == "confirmation e-mail already requested for this subscription"
    # Another e-mail has its own subscription.
    assert claims.claim_double_opt_in(db, store_id, "c@d.co", owner="delivery:4", now=now) is None
    # An unsubscribe ends the round: the next subscription may ask again, once.
    with db.session() as s:
        claims.close_subscription_round(s, store_id, "a@b.co")
    assert claims.claim_double_opt_in(db, store_id, "a@b.co", owner="delivery:5", now=later) is None
    assert claims.claim_double_opt_in(db, store_id, "a@b.co", owner="delivery:6", now=later) is not None
    with db.session() as s:
        rounds = s.scalars(
            select(DoubleOptInClaim.round).where(DoubleOptInClaim.email == "a@b.co").order_by("round")
        ).all()
    assert rounds == [1, 2]


def test_a_released_or_abandoned_claim_can_be_taken(runtime: Runtime) -> None:
    db, store_id = runtime.db, make_store(runtime)
    now = FakeClock().now()
    assert claims.claim_double_opt_in(db, store_id, "a@b.co", owner="delivery:1", now=now) is None
    claims.release_double_opt_in(db, store_id, "a@b.co", "delivery:1")  # the send failed
    assert claims.claim_double_opt_in(db, store_id, "a@b.co", owner="delivery:2", now=now) is None
    stale = now + STALE_LOCK + timedelta(seconds=1)  # delivery:2's worker died
    assert claims.claim_double_opt_in(db, store_id, "a@b.co", owner="delivery:3", now=stale) is None


def write_back_count(runtime: Runtime) -> int:
    with runtime.db.session() as s:
        return s.scalar(select(func.count()).select_from(ConsentWriteBack)) or 0


def test_callback_accepts_only_the_stores_token_and_a_real_email(runtime: Runtime) -> None:
    make_store(runtime)
    make_store(runtime, "gone01", status="uninstalled")
    db = runtime.db
    refused = [
        callbacks.accept_callback(db, "opt_out", "abc123", "wrong", "a@b.co"),
        callbacks.accept_callback(db, "opt_out", "nosuch", "cb-secret", "a@b.co"),
        callbacks.accept_callback(db, "opt_out", "gone01", "cb-secret", "a@b.co"),
        callbacks.accept_callback(db, "opt_out", "abc123", "", "a@b.co"),
    ]
    assert {(a.status, a.message) for a in refused} == {(403, callbacks.FORBIDDEN_MESSAGE)}
    for bad in ("", "$email$", "no-at-sign", "two@@b.co", "a b@c.co"):
        answer = callbacks.accept_callback(db, "opt_in", "abc123", "cb-secret", bad)
        assert answer.status == 400 and "malformed e-mail address" in answer.message
    assert write_back_count(runtime) == 0
    ok = callbacks.accept_callback(db, "opt_in", "abc123", "cb-secret", " Ann@Example.COM ")
    assert (ok.status, ok.message) == (200, "opt-in of ann@example.com recorded")
    with db.session() as s:
        row = s.get(ConsentWriteBack, ok.write_back_id)
        assert (row.email, row.action, row.source, row.status) == (
            "ann@example.com",
            "opt_in",
            "callback",
            "pending",
        )
