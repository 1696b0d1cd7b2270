"""Replayed signed payloads (findings 3, 4 and 9), on the real app against the sandbox BigCommerce and
SALESmanago, on SQLite and on PostgreSQL + Redis.

A signed payload is used once (its `jti` kept until `exp`, in the database). An uninstall is acted on
only when BigCommerce confirms it (the token refused, or the app's webhooks gone); when BigCommerce
cannot be asked the store is paused and a queued row asks again. A removed user's saved load link
stays refused until a payload issued after the removal. A confirmed uninstall revokes the v3 key."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlalchemy import select, update

from app_stack import AppStack
from smbc.account.models import SalesmanagoAccount
from smbc.core.clock import utcnow
from smbc.core.config import Settings
from smbc.stores.uninstall import REVOKE_V3_KEY, UninstallTask, run_uninstall_task
from support import wait_for

OWNER_ID, STAFF_ID = 1001, 1002


@pytest.fixture
def stack(backend_settings: Settings) -> Iterator[AppStack]:
    with AppStack(backend_settings) as running:
        yield running


def installed_and_set_up(stack: AppStack) -> None:
    assert stack.sb.bc.install(stack.store_hash).status_code == 200
    wait_for(lambda: stack.store().setup_completed_at, "the store's set-up job", timeout=60)


def jwt_of(load_url: str) -> str:
    return parse_qs(urlparse(load_url).query)["signed_payload_jwt"][0]


def uninstall_with(stack: AppStack, token: str) -> httpx.Response:
    return stack.get("/bigcommerce/uninstall", params={"signed_payload_jwt": token})


def intact(stack: AppStack) -> bool:
    store = stack.store()
    return (
        store.status == "installed"
        and store.access_token == stack.sb.bc.access_token(stack.store_hash)
        and bool(store.webhook_secret and store.callback_secret)
        and store.sync_paused_reason is None
    )


def test_a_load_payload_replayed_at_uninstall_changes_nothing(stack: AppStack) -> None:
    installed_and_set_up(stack)
    load_url = stack.sb.bc.load_url(stack.store_hash)
    assert stack.http.get(load_url).status_code == 200
    before = stack.snapshot()

    replayed = uninstall_with(stack, jwt_of(load_url))
    assert replayed.status_code == 403 and "already used" in replayed.text
    assert stack.snapshot() == before

    # A payload signed for the store but never used: BigCommerce still lists the app's webhooks.
    fresh = uninstall_with(stack, stack.sb.bc.signed_payload(stack.store_hash))
    assert fresh.status_code == 200 and "nothing was changed" in fresh.text
    assert intact(stack)
    assert stack.sb.bc.load(stack.store_hash).status_code == 200


def test_a_load_link_opened_twice_gets_a_clear_page(stack: AppStack) -> None:
    installed_and_set_up(stack)
    load_url = stack.sb.bc.load_url(stack.store_hash)
    first = stack.http.get(load_url)
    assert first.status_code == 200, first.text[-3000:]
    again = stack.http.get(load_url)
    assert again.status_code == 403
    assert "This link was already used: open the app again from the control panel." in again.text


def test_uninstall_waits_for_bigcommerce_then_wipes_and_revokes_the_v3_key(stack: AppStack) -> None:
    installed_and_set_up(stack)
    opened = stack.sb.bc.load(stack.store_hash)
    sm = stack.sb.sm.NORMAL
    token = stack.session_token(opened.text)
    login = stack.post("/app/account/login", token=token, data={"email": sm.email, "password": sm.password})
    assert login.status_code == 200 and len(stack.sb.sm.v3_keys(sm.client_id)) == 1

    stack.sb.bc.faults.error_rate = 1.0  # BigCommerce answers 500: it cannot confirm
    assert stack.sb.bc.uninstall(stack.store_hash).status_code == 200
    store = stack.store()
    assert store.sync_paused_reason == "uninstall_unconfirmed"
    assert store.status == "installed" and store.access_token and store.webhook_secret
    with stack.runtime.db.session() as s:
        assert s.scalar(select(SalesmanagoAccount)) is not None  # nothing wiped yet
        confirm_id = s.scalar(select(UninstallTask.id).where(UninstallTask.kind == "confirm"))
    assert confirm_id is not None

    stack.sb.bc.faults.error_rate = 0.0  # BigCommerce answers again: the token is refused

    def asked_again() -> bool:  # the row made due now (the inline worker may hold it, or retry later)
        with stack.runtime.db.session() as s:
            s.execute(update(UninstallTask).values(next_attempt_at=utcnow() - timedelta(seconds=1)))
        run_uninstall_task(confirm_id, db=stack.runtime.db)
        return stack.store().status == "uninstalled"

    wait_for(asked_again, "the confirmed uninstall", timeout=30)
    gone = stack.store()
    assert (gone.access_token, gone.webhook_secret, gone.callback_secret) == (None, None, None)
    assert gone.sync_paused_reason == "uninstalled"
    wait_for(lambda: stack.sb.sm.v3_keys(sm.client_id) == [], "the v3 key's revocation", timeout=30)

    def revoke_row() -> UninstallTask | None:
        with stack.runtime.db.session() as s:
            return s.scalar(select(UninstallTask).where(UninstallTask.kind == REVOKE_V3_KEY))

    wait_for(lambda: revoke_row().status == "done", "the revocation row's end", timeout=30)
    assert revoke_row().v3_key is None


def test_a_confirmed_uninstall_revokes_the_v3_key(stack: AppStack) -> None:
    installed_and_set_up(stack)
    opened = stack.sb.bc.load(stack.store_hash)
    sm = stack.sb.sm.NORMAL
    token = stack.session_token(opened.text)
    assert (
        stack.post(
            "/app/account/login", token=token, data={"email": sm.email, "password": sm.password}
        ).status_code
        == 200
    )
    assert len(stack.sb.sm.v3_keys(sm.client_id)) == 1
    assert stack.sb.bc.uninstall(stack.store_hash).status_code == 200
    assert stack.store().status == "uninstalled"
    wait_for(lambda: stack.sb.sm.v3_keys(sm.client_id) == [], "the v3 key's revocation", timeout=30)


def test_a_removed_user_cannot_come_back_with_a_saved_load_link(stack: AppStack) -> None:
    installed_and_set_up(stack)
    earlier = int(time.time()) - 5  # signed before the removal, kept, not opened yet
    saved_jwt = stack.sb.bc.signed_payload(stack.store_hash, STAFF_ID, iat=earlier, nbf=earlier)
    saved = f"{stack.app_url}/bigcommerce/load?signed_payload_jwt={saved_jwt}"
    assert stack.sb.bc.load(stack.store_hash, user_id=STAFF_ID).status_code == 200
    assert stack.sb.bc.remove_user(stack.store_hash, STAFF_ID).status_code == 200

    replay = stack.http.get(saved)
    assert replay.status_code == 403 and "access to this app was removed" in replay.text

    # The owner gives access back: a payload issued after the removal opens the app (and clears it).
    assert stack.sb.bc.load(stack.store_hash, user_id=STAFF_ID).status_code == 200


def test_v3_key_not_revocable_is_logged_without_the_key(
    stack: AppStack, caplog: pytest.LogCaptureFixture
) -> None:
    installed_and_set_up(stack)
    with stack.runtime.db.session() as s:
        store_id = stack.store().id
        row = UninstallTask(store_id=store_id, kind=REVOKE_V3_KEY, v3_key="secret-v3-key-123")
        s.add(row)
        s.flush()
        row_id = row.id
        # Received long ago: the retry policy gives up on the first failure.
        s.execute(update(UninstallTask).values(received_at=utcnow() - timedelta(days=8)))
    refused = httpx.Client(transport=httpx.MockTransport(lambda request: httpx.Response(500)))
    with caplog.at_level(logging.ERROR):
        result = run_uninstall_task(row_id, db=stack.runtime.db, http=refused)
    assert result is not None and result.status.value == "failed"
    assert "could not be revoked" in caplog.text and "secret-v3-key-123" not in caplog.text
    with stack.runtime.db.session() as s:
        assert s.get(UninstallTask, row_id).v3_key is None
