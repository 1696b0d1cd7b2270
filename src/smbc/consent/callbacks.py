"""SALESmanago's opt-in / opt-out callbacks, checked and recorded: the token is compared in constant
time, the store's callback budget (shared by every process) counted, the e-mail validated, and a
write-back row recorded with the consent history's row and queued; the worker applies it to
BigCommerce (`smbc.consent.write_back`)."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from smbc.consent import service as consent
from smbc.consent.history import ConsentChangeKind, ConsentSource, record_consent_change
from smbc.consent.write_back import enqueue_write_back, record_write_back
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.rate_limit import Budget, DatabaseCounters, RateLimiter
from smbc.mapping import rules

CALLBACK_PATH = "/callbacks/salesmanago"
MAX_FIELD = 1024
FORBIDDEN_MESSAGE = "unknown store or wrong token"
# Per store: only callbacks with the right token count, so nobody without it can use up the budget.
# High on purpose: an opt-out campaign in SALESmanago may call back in bursts, and a refused
# callback may never come again (whether SALESmanago retries one is UNCONFIRMED); this only stops a
# leaked token from flooding the write-back queue.
CALLBACK_BUDGET = Budget("sm-callback", 6000, 60)
# Compared against when the store is unknown or has no secret, so the timing says nothing.
_PLACEHOLDER = secrets.token_urlsafe(24)


@dataclass(frozen=True)
class CallbackAnswer:
    status: int
    message: str
    write_back_id: int | None = None
    retry_after: float = 0.0


def token_matches(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a store without a secret matches nothing."""
    same = hmac.compare_digest((expected or _PLACEHOLDER).encode(), (given or "").encode())
    return same and bool(expected)


def callback_store_id(db: Database, store_hash: str, token: str) -> int | None:
    """The id of the installed store whose callback token this is, or None (unknown store, wrong token)."""
    with db.session() as session:
        found = session.execute(
            select(Store.id, Store.status, Store.callback_secret).where(Store.hash == store_hash[:64])
        ).first()
    expected = found.callback_secret if found is not None and found.status == "installed" else None
    return found.id if found is not None and token_matches(expected, token) else None


def accept_callback(
    db: Database,
    action: str,
    store_hash: str,
    token: str,
    email: str,
    *,
    limiter: RateLimiter | None = None,
    enqueue: bool = False,
) -> CallbackAnswer:
    """Check, record the write-back and return what to answer.

    `limiter`: the callback budget on the deployment's shared counters (the database's by default);
    `enqueue`: also ask a worker to apply the recorded write-back now."""
    store_id = callback_store_id(db, store_hash, token)
    if store_id is None:
        return CallbackAnswer(403, FORBIDDEN_MESSAGE)  # the same answer for an unknown store
    allowed, wait = (limiter or RateLimiter(CALLBACK_BUDGET, DatabaseCounters(db))).allow((str(store_id),))
    if not allowed:
        return CallbackAnswer(429, "too many callbacks for this store: try again later", retry_after=wait)
    address = rules.normalize_email(email)
    if rules.email_problem(address, ()) is not None:
        return CallbackAnswer(400, f"malformed e-mail address {email[:100]!r}: nothing was changed")
    opted_in = action == consent.OPT_IN
    with db.session() as session:
        row = record_write_back(session, store_id, address, action, source=consent.SOURCE_CALLBACK)
        row_id = row.id
        record_consent_change(
            session,
            store_id,
            address,
            source=ConsentSource.SALESMANAGO_CALLBACK,
            change=ConsentChangeKind.OPTED_IN if opted_in else ConsentChangeKind.OPTED_OUT,
            sent=f"BigCommerce subscriber to be {'opted in' if opted_in else 'opted out'} "
            f"(write-back consent:{row_id})",
            ref=f"consent:{row_id}",
        )
    if enqueue:
        enqueue_write_back(row_id)
    verb = "opt-in" if opted_in else "opt-out"
    return CallbackAnswer(200, f"{verb} of {address} recorded", row_id)
