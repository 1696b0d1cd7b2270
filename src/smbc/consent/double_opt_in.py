"""Double opt-in claims: one confirmation e-mail per subscription round of an e-mail, whatever the
number of deliveries or workers (insert-first, unique per store + e-mail + round)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from smbc.consent.models import DoubleOptInClaim
from smbc.db.session import Database
from smbc.engine.ledgers import STALE_LOCK, claim_by_inserting, forgotten, ledger_keys


def _round(session: Session, store_id: int, email: str) -> int:
    closed = session.scalar(
        select(func.count())
        .select_from(DoubleOptInClaim)
        .where(
            DoubleOptInClaim.store_id == store_id,
            DoubleOptInClaim.email.in_(ledger_keys(email)),  # a forgotten person's claims count too
            DoubleOptInClaim.closed.is_(True),
        )
    )
    return int(closed or 0) + 1


def claim_double_opt_in(db: Database, store_id: int, email: str, *, owner: str, now: datetime) -> str | None:
    """Insert-first claim of the current subscription's confirmation e-mail. None: ours to ask for;
    otherwise why not."""
    with db.session() as session:
        round_ = _round(session, store_id, email)

    def held(row: DoubleOptInClaim | None) -> str | None:
        if row is None or row.closed:
            return "confirmation e-mail claimed and released meanwhile; not asked again"
        if row.state == "sent":
            return "confirmation e-mail already requested for this subscription"
        if row.claimed_by == owner or now - row.claimed_at > STALE_LOCK:
            row.claimed_by, row.claimed_at = owner, now  # our earlier attempt, or a dead worker's
            return None
        return f"confirmation e-mail being requested by {row.claimed_by}"

    claim = DoubleOptInClaim(store_id=store_id, email=email, round=round_, claimed_by=owner, claimed_at=now)
    holder = select(DoubleOptInClaim).where(
        DoubleOptInClaim.store_id == store_id,
        DoubleOptInClaim.email.in_(ledger_keys(email)),
        DoubleOptInClaim.round == round_,
    )
    with db.session() as session:
        earlier = session.scalars(holder).first()
        if earlier is not None and forgotten(earlier.email):  # kept under a keyed hash by a forget
            return held(earlier)
    return claim_by_inserting(db, claim, holder, held)


def release_double_opt_in(db: Database, store_id: int, email: str, owner: str) -> None:
    with db.session() as session:
        session.execute(
            DoubleOptInClaim.__table__.delete().where(
                DoubleOptInClaim.store_id == store_id,
                DoubleOptInClaim.email == email,
                DoubleOptInClaim.claimed_by == owner,
                DoubleOptInClaim.state == "claimed",
                DoubleOptInClaim.closed.is_(False),
            )
        )


def mark_double_opt_in_sent(session: Session, store_id: int, email: str, owner: str, now: datetime) -> None:
    session.execute(
        update(DoubleOptInClaim)
        .where(
            DoubleOptInClaim.store_id == store_id,
            DoubleOptInClaim.email == email,
            DoubleOptInClaim.claimed_by == owner,
            DoubleOptInClaim.closed.is_(False),
        )
        .values(state="sent", sent_at=now)
    )


def close_subscription_round(session: Session, store_id: int, email: str) -> None:
    """The e-mail unsubscribed: its next subscription may ask for a confirmation e-mail again."""
    session.execute(
        update(DoubleOptInClaim)
        .where(
            DoubleOptInClaim.store_id == store_id,
            DoubleOptInClaim.email == email,
            DoubleOptInClaim.closed.is_(False),
        )
        .values(closed=True)
    )
