"""Newsletter consent end to end, both ways, against both fakes: shopper actions on the fake
BigCommerce become opt-ins / opt-outs in the fake SALESmanago (with double opt-in and opt-in
synchronization), and SALESmanago's callbacks come back to BigCommerce's subscribers without an
echo going back to SALESmanago."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from realtime_env import RealtimeEnv
from sqlalchemy import func, select

from smbc.account.credentials import callback_urls
from smbc.consent import write_back as consent
from smbc.consent.models import ConsentWriteBack
from smbc.core import jobs
from smbc.core.config import Settings
from smbc.core.remote_calls import RemoteCall
from smbc.db.models import Store
from smbc.stores.hooks import SECRET_HEADER
from support import wait_for

NEWSLETTER = "marketing_newsletter"
UPSERT = "/api/contact/upsert"


@pytest.fixture
def env(backend_settings: Settings) -> Iterator[RealtimeEnv]:
    with RealtimeEnv(backend_settings) as environment:
        yield environment


@pytest.fixture
def env_sqlite(settings: Settings) -> Iterator[RealtimeEnv]:
    with RealtimeEnv(settings) as environment:
        yield environment


def write_backs(env: RealtimeEnv) -> list[ConsentWriteBack]:
    with env.db.session() as s:
        return list(s.scalars(select(ConsentWriteBack).order_by(ConsentWriteBack.id)).all())


def settle_all(env: RealtimeEnv) -> None:
    """Webhooks delivered and processed, write-backs applied, and their echoes processed too."""
    env.settle()
    last_nudge = [time.monotonic()]

    def applied() -> bool:
        now = env.clock.now()
        due = [
            w
            for w in write_backs(env)
            if w.status == "processing"
            or (w.status == "pending" and (w.next_attempt_at is None or w.next_attempt_at <= now))
        ]
        if not due and jobs.huey.pending_count() == 0:
            return True
        if time.monotonic() - last_nudge[0] > 1.0:
            # What the periodic sweep does when a queue message is lost (another test process
            # sharing the Redis database can flush it): queue the due rows again.
            last_nudge[0] = time.monotonic()
            for row in due:
                if row.status == "pending":
                    consent.enqueue_write_back(row.id)
        return False

    try:
        wait_for(applied, what="write-backs to be applied")
    except AssertionError:
        rows = [(w.id, w.action, w.status, w.attempts, w.reason, w.last_error) for w in write_backs(env)]
        raise AssertionError(f"write-backs not applied: queue={jobs.huey.pending_count()} {rows}") from None
    env.settle()


def urls(env: RealtimeEnv) -> dict[str, str]:
    with env.db.session() as s:
        store = s.scalars(select(Store).where(Store.hash == env.store_hash)).one()
        return callback_urls(env.app_url, store)


def paste_callback_urls(env: RealtimeEnv) -> dict[str, str]:
    found = urls(env)
    env.sm.set_callback_urls(env.client_id, opt_in=found["opt_in"], opt_out=found["opt_out"])
    return found


def subscriber(env: RealtimeEnv, email: str) -> Any:
    return env.bc.store(env.store_hash).subscriber_by_email(email)


def upserts(env: RealtimeEnv, since: int = 0, email: str | None = None) -> list[dict[str, Any]]:
    bodies = [c["body"] for c in env.sm.calls[since:] if c["path"] == UPSERT]
    return [b for b in bodies if email is None or b["contact"]["email"] == email]


def test_guest_checkout_with_and_without_the_newsletter_box(env: RealtimeEnv) -> None:
    env.configure(**{"tags.newsletter": "newsletter", "tags.guest_purchase": "guest"})
    cart = env.storefront.add_to_cart(product_id=77)
    env.storefront.checkout(cart["id"], guest_email="ticked@example.com", newsletter=True)
    other = env.storefront.add_to_cart(product_id=77)
    env.storefront.checkout(other["id"], guest_email="unticked@example.com", newsletter=False)
    settle_all(env)
    ticked = env.contact("ticked@example.com")
    assert ticked["optedIn"] is True
    assert {"NEWSLETTER", "GUEST"} <= set(ticked["tags"])
    unticked = env.contact("unticked@example.com")
    assert unticked["optedIn"] is False and "NEWSLETTER" not in unticked["tags"]
    # BigCommerce gave the unticked shopper a subscriber record without consent: nobody opted in.
    assert subscriber(env, "unticked@example.com").consents == []
    assert not any(b.get("forceOptIn") for b in upserts(env, email="unticked@example.com"))
    assert len(env.events("PURCHASE")) == 2


def test_subscribe_and_unsubscribe_on_the_storefront(env: RealtimeEnv) -> None:
    env.configure(**{"tags.newsletter": "newsletter"})
    env.storefront.subscribe("fan@example.com", "Fan", "Reader")
    settle_all(env)
    contact = env.contact("fan@example.com")
    assert contact["optedIn"] is True and contact["name"] == "Fan Reader" and "NEWSLETTER" in contact["tags"]
    env.storefront.unsubscribe("fan@example.com")
    settle_all(env)
    assert env.contact("fan@example.com")["optedIn"] is False
    last = upserts(env, email="fan@example.com")[-1]
    assert last["forceOptOut"] is True and not last.get("forceOptIn")
    assert subscriber(env, "fan@example.com").consents == []  # the record is kept
    calls = len(env.sm.calls)
    env.storefront.subscribe("fan@example.com")
    settle_all(env)
    assert env.contact("fan@example.com")["optedIn"] is True
    assert len(upserts(env, calls)) == 1


def test_register_with_and_without_the_newsletter_box(env_sqlite: RealtimeEnv) -> None:
    env = env_sqlite
    env.configure(**{"tags.newsletter": "newsletter", "tags.registration": "registered"})
    env.storefront.register("boxed@example.com", "Box", "Ticked", newsletter=True)
    env.storefront.register("plain@example.com", "No", "Box")
    settle_all(env)
    boxed = env.contact("boxed@example.com")
    assert boxed["optedIn"] is True and {"NEWSLETTER", "REGISTERED"} <= set(boxed["tags"])
    plain = env.contact("plain@example.com")
    assert plain["optedIn"] is False and "NEWSLETTER" not in plain["tags"]
    assert subscriber(env, "plain@example.com") is None


def test_double_opt_in_one_confirmation_per_subscription(env: RealtimeEnv) -> None:
    env.configure(
        **{
            "double_opt_in.enabled": "true",
            "double_opt_in.template_id": "tpl-7",
            "double_opt_in.account_id": "acc-3",
            "double_opt_in.subject": "Please confirm",
        }
    )
    paste_callback_urls(env)
    env.storefront.subscribe("doi@example.com")
    settle_all(env)
    [mail] = env.sm.confirmation_emails(env.client_id)
    assert mail["email"] == "doi@example.com"
    assert (mail["templateId"], mail["accountId"], mail["subject"]) == ("tpl-7", "acc-3", "Please confirm")
    assert env.contact("doi@example.com")["optedIn"] is False  # until the contact confirms

    # The same subscription delivered again, in several new deliveries: no second e-mail.
    [attempt] = env.bc.webhooks.attempts("store/subscriber/created")
    for shift in (1, 2, 3):
        payload = {**attempt.payload, "created_at": attempt.payload["created_at"] + shift}
        answer = httpx.post(
            f"{env.app_url}/webhooks/bigcommerce",
            json=payload,
            headers={SECRET_HEADER: attempt.headers[SECRET_HEADER]},
        )
        assert answer.status_code == 200
    settle_all(env)
    assert len(env.sm.confirmation_emails(env.client_id)) == 1

    # Confirming calls the opt-in callback: BigCommerce already has the consent, nothing echoes back.
    calls = len(env.sm.calls)
    env.sm.confirm_double_opt_in(env.client_id, "doi@example.com")
    settle_all(env)
    assert env.contact("doi@example.com")["optedIn"] is True
    assert subscriber(env, "doi@example.com").consents == [NEWSLETTER]
    assert write_backs(env)[-1].reason == "already opted in"
    assert upserts(env, calls) == []

    # Unsubscribing ends the subscription; subscribing again is a new one with its own e-mail.
    env.storefront.unsubscribe("doi@example.com")
    settle_all(env)
    env.storefront.subscribe("doi@example.com")
    settle_all(env)
    assert len(env.sm.confirmation_emails(env.client_id)) == 2

    # Already opted in in SALESmanago: never a confirmation e-mail.
    env.sm.add_contact(env.client_id, "known@example.com", opted_in=True)
    env.storefront.subscribe("known@example.com")
    settle_all(env)
    assert len(env.sm.confirmation_emails(env.client_id)) == 2
    assert env.contact("known@example.com")["optedIn"] is True

    # Double opt-in off: opted in at once, no e-mail.
    env.configure(**{"double_opt_in.enabled": "false"})
    env.storefront.subscribe("direct@example.com")
    settle_all(env)
    assert env.contact("direct@example.com")["optedIn"] is True
    assert len(env.sm.confirmation_emails(env.client_id)) == 2


def test_double_opt_in_guest_checkout_sends_one_email(env_sqlite: RealtimeEnv) -> None:
    env = env_sqlite
    env.configure(**{"double_opt_in.enabled": "true"})
    cart = env.storefront.add_to_cart(product_id=77)
    env.storefront.checkout(cart["id"], guest_email="buyer@example.com", newsletter=True)
    settle_all(env)
    # The order (is_email_opt_in) and the subscriber both say "subscribes now": one e-mail.
    [mail] = env.sm.confirmation_emails(env.client_id)
    assert mail["email"] == "buyer@example.com" and not mail["templateId"]
    assert len(env.events("PURCHASE")) == 1


def test_opt_in_synchronization_keeps_salesmanago_opt_in(env: RealtimeEnv) -> None:
    env.sm.add_contact(env.client_id, "loyal@example.com", opted_in=True)
    env.sm.add_contact(env.client_id, "gone@example.com", opted_in=False)
    env.storefront.register("loyal-off@example.com", "Sync", "Off")  # setting off: nothing checked
    env.sm.add_contact(env.client_id, "loyal-off@example.com", opted_in=True)
    settle_all(env)
    env.configure(opt_in_sync="true")
    calls = len(env.sm.calls)
    customer = env.bc.storefront(env.store_hash, channel_id=2).register("loyal@example.com", "Loy", "Al")
    env.storefront.register("gone@example.com", "Gone", "Away")
    settle_all(env)
    [sent] = upserts(env, calls, email="loyal@example.com")
    assert sent["forceOptIn"] is True and not sent.get("useApiDoubleOptIn")
    assert env.contact("loyal@example.com")["optedIn"] is True
    marked = subscriber(env, "loyal@example.com")
    assert marked.consents == [NEWSLETTER] and marked.channel_id == 2
    assert (marked.first_name, marked.last_name) == (customer["first_name"], customer["last_name"])
    # The subscriber created by the write-back echoes back: not sent to SALESmanago again.
    assert len(upserts(env, calls, email="loyal@example.com")) == 1
    assert subscriber(env, "gone@example.com") is None
    assert env.contact("gone@example.com")["optedIn"] is False
    assert subscriber(env, "loyal-off@example.com") is None


def test_unsubscribe_from_a_salesmanago_email_reaches_bigcommerce_without_echo(env: RealtimeEnv) -> None:
    paste_callback_urls(env)
    env.storefront.subscribe("reader@example.com")
    settle_all(env)
    assert env.contact("reader@example.com")["optedIn"] is True
    calls = len(env.sm.calls)
    answer = env.sm.opt_out(env.client_id, "reader@example.com")  # the unsubscribe link
    assert answer is not None and answer.status_code == 200 and answer.json()["success"] is True
    settle_all(env)
    kept = subscriber(env, "reader@example.com")
    assert kept is not None and kept.consents == []
    assert upserts(env, calls) == []  # the echo did not reach SALESmanago
    echo = env.deliveries("store/subscriber/updated")[-1]
    assert (echo.status, echo.reason) == ("done", "newsletter consent unchanged")
    [row] = write_backs(env)
    assert (row.status, row.action, row.source) == ("done", "opt_out", "callback")
    with env.db.session() as s:
        recorded = s.scalars(select(RemoteCall).where(RemoteCall.context == f"consent:{row.id}")).all()
    assert {(c.method, c.outcome) for c in recorded} >= {("GET", "success"), ("PUT", "success")}

    # The same callback again changes nothing; an unknown e-mail is a success that changes nothing.
    env.sm.opt_out(env.client_id, "reader@example.com")
    stranger = httpx.get(urls(env)["opt_out"].replace("$email$", "stranger@example.com"))
    assert stranger.status_code == 200
    settle_all(env)
    assert [w.reason for w in write_backs(env)[1:]] == [
        "already opted out",
        "no subscriber with this e-mail: nothing to opt out",
    ]
    assert subscriber(env, "stranger@example.com") is None
    assert upserts(env, calls) == []

    # Opted in again on the contact card: the consent comes back, again without an echo.
    env.sm.opt_in(env.client_id, "reader@example.com")
    settle_all(env)
    assert subscriber(env, "reader@example.com").consents == [NEWSLETTER]
    assert upserts(env, calls) == []


def test_opt_in_callback_creates_a_subscriber_on_the_chosen_channel(env_sqlite: RealtimeEnv) -> None:
    env = env_sqlite
    env.configure(newsletter_channel="2")
    paste_callback_urls(env)
    env.sm.add_contact(env.client_id, "Newbie@Example.com", opted_in=False)
    calls = len(env.sm.calls)
    env.sm.opt_in(env.client_id, "Newbie@Example.com")
    settle_all(env)
    created = subscriber(env, "newbie@example.com")
    assert created is not None and created.consents == [NEWSLETTER] and created.channel_id == 2
    assert upserts(env, calls) == []  # store/subscriber/created echo: nothing changed


def test_forged_or_malformed_callbacks_change_nothing(env_sqlite: RealtimeEnv) -> None:
    env = env_sqlite
    good = urls(env)["opt_out"].replace("$email$", "someone@example.com")
    forged = good.rsplit("token=", 1)[0] + "token=not-the-secret"
    other_store = good.replace(f"store={env.store_hash}", "store=nosuchstore")
    for url in (forged, other_store, good.rsplit("&token=", 1)[0]):
        answer = httpx.get(url)
        assert answer.status_code == 403
        assert answer.json() == {"success": False, "message": "unknown store or wrong token"}
    answer = httpx.post(forged)
    assert answer.status_code == 403
    malformed = httpx.get(urls(env)["opt_in"].replace("$email$", "not-an-email"))
    assert malformed.status_code == 400 and "malformed e-mail address" in malformed.json()["message"]
    unreplaced = httpx.get(urls(env)["opt_in"])  # SALESmanago did not fill in $email$
    assert unreplaced.status_code == 400
    with env.db.session() as s:
        assert s.scalar(select(func.count()).select_from(ConsentWriteBack)) == 0
    # POST with the e-mail in the body (the store and token in the address) works like GET.
    base = good.split("?", 1)[0]
    token = good.rsplit("token=", 1)[1]
    address = {"store": env.store_hash, "token": token}
    posted = httpx.post(base, params=address, data={"email": "someone@example.com"})
    assert posted.status_code == 200


def test_bigcommerce_down_during_a_callback_then_up(env: RealtimeEnv) -> None:
    paste_callback_urls(env)
    env.storefront.subscribe("patient@example.com")
    settle_all(env)
    env.bc.faults.error_rate = 1.0
    answer = env.sm.opt_out(env.client_id, "patient@example.com")
    assert answer is not None and answer.status_code == 200  # answered without BigCommerce
    settle_all(env)
    [row] = write_backs(env)
    assert row.status == "pending" and row.next_attempt_at is not None and row.last_error
    assert subscriber(env, "patient@example.com").consents == [NEWSLETTER]
    with env.db.session() as s:
        failed = s.scalars(select(RemoteCall).where(RemoteCall.context == f"consent:{row.id}")).all()
    assert failed and {c.outcome for c in failed} == {"retry"}
    env.bc.faults.error_rate = 0.0
    for _ in range(5):
        if write_backs(env)[0].status == "done":
            break
        env.clock.advance(3600)
        consent.sweep_write_backs(env.db, env.clock.now())
        settle_all(env)
    assert write_backs(env)[0].status == "done"
    assert subscriber(env, "patient@example.com").consents == []


def test_deleted_subscriber_is_opted_out(env_sqlite: RealtimeEnv) -> None:
    env = env_sqlite
    env.storefront.subscribe("leaving@example.com")
    env.storefront.subscribe("staying@example.com")
    settle_all(env)
    doomed = subscriber(env, "leaving@example.com").id
    answer = httpx.delete(
        f"{env.bc.api_base(env.store_hash)}/v3/customers/subscribers/{doomed}",
        headers={"X-Auth-Token": env.bc.access_token(env.store_hash)},
    )
    assert answer.status_code == 204
    settle_all(env)
    assert env.contact("leaving@example.com")["optedIn"] is False
    assert upserts(env, email="leaving@example.com")[-1]["forceOptOut"] is True
    assert env.contact("staying@example.com")["optedIn"] is True
    [deleted] = env.deliveries("store/subscriber/deleted")
    assert (deleted.status, deleted.reason) == ("done", "subscriber deleted: opted out")
