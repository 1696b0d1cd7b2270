"""What keeps a signed control-panel payload from being replayed: each is used once, and a removed
user stays removed.

BigCommerce signs load, uninstall and remove-user payloads alike, and each stays valid for 24 hours,
so a saved one could be sent again (a load URL at /uninstall, a removed user's old load URL). Every
payload's `jti` is kept in the database, shared by all processes, until its `exp`; a second use is
refused. A user's removal is kept until a payload issued after it (`iat`) shows that the owner gave
the user access again."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from smbc.bigcommerce.signed_payload import SignedPayload, SignedPayloadError
from smbc.core.clock import get_clock, utcnow
from smbc.db.base import Base
from smbc.db.session import conflict_insert
from smbc.db.types import UTCDateTime

ALREADY_USED = "This link was already used: open the app again from the control panel."
ACCESS_REMOVED = (
    "Your access to this app was removed by the store owner. Ask the owner to give it back, then open "
    "the app again from the control panel."
)


class UsedSignedPayload(Base):
    """A payload that was used, kept until it expires (its `exp`)."""

    __tablename__ = "used_signed_payloads"

    jti_hash: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the jti: fixed length
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)  # epoch seconds


class RemovedStoreUser(Base):
    """A user the owner removed from the store; only a payload issued after `removed_at` clears it."""

    __tablename__ = "removed_store_users"

    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), primary_key=True)
    bc_user_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    removed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PayloadReplayed(SignedPayloadError):
    """The payload was used before (status 403)."""

    def __init__(self) -> None:
        super().__init__(ALREADY_USED, status=403)


class UserRemoved(SignedPayloadError):
    """The payload was issued before its user's removal (status 403)."""

    def __init__(self) -> None:
        super().__init__(ACCESS_REMOVED, status=403)


def use_once(session: Session, payload: SignedPayload) -> None:
    """Record the payload as used, or raise `PayloadReplayed` when it was used before. Expired records
    are pruned here: a payload past its `exp` is refused by the verifier anyway."""
    if not payload.jti:
        raise SignedPayloadError("The signed payload has no 'jti' claim.", status=400)
    now = int(get_clock().time())
    session.execute(delete(UsedSignedPayload).where(UsedSignedPayload.expires_at < now))
    jti_hash = hashlib.sha256(payload.jti.encode()).hexdigest()
    statement = (
        conflict_insert(session.get_bind().dialect.name, UsedSignedPayload)
        .values(jti_hash=jti_hash, expires_at=int(payload.expires_at))
        .on_conflict_do_nothing(index_elements=["jti_hash"])
        .returning(UsedSignedPayload.jti_hash)  # psycopg's rowcount here is -1: a row back means inserted
    )
    if session.execute(statement).scalar() is None:
        raise PayloadReplayed()


def record_removal(session: Session, store_id: int, bc_user_id: int) -> None:
    """Remember that the owner removed the user (a later removal moves the time forward)."""
    removal = session.get(RemovedStoreUser, (store_id, bc_user_id))
    if removal is None:
        session.add(RemovedStoreUser(store_id=store_id, bc_user_id=bc_user_id, removed_at=utcnow()))
    else:
        removal.removed_at = utcnow()
    session.flush()


def refuse_if_removed(session: Session, store_id: int, payload: SignedPayload) -> None:
    """Raise `UserRemoved` when the payload's user was removed before it was issued; a payload issued
    after the removal means the owner gave access back, and clears the record."""
    removal = session.scalar(
        select(RemovedStoreUser).where(
            RemovedStoreUser.store_id == store_id, RemovedStoreUser.bc_user_id == payload.user.id
        )
    )
    if removal is None:
        return
    # `iat` is whole seconds: a payload of the removal's own second counts as after it (the owner
    # may give access back at once), one of any earlier second as before.
    removed_at = int(removal.removed_at.replace(tzinfo=removal.removed_at.tzinfo or UTC).timestamp())
    if payload.issued_at is None or payload.issued_at < removed_at:
        raise UserRemoved()
    session.delete(removal)
    session.flush()
