"""Newsletter consent, both ways (reference: BigCommerce §3.3–§3.4, SALESmanago §3.1–§3.2, §7.1, §8).

BigCommerce -> SALESmanago. The truth is the subscriber's `consents` (a subscriber can exist without
opting in). A change is compared with the last consent known for the e-mail (contact ledger):
`forceOptIn` + newsletter tags when it subscribes now, `forceOptOut` when a known opt-in is withdrawn
(unsubscribed or deleted), all flags false otherwise: nobody is ever opted in by accident.
- Double opt-in [6]: a contact subscribing now is sent with `useApiDoubleOptIn` unless SALESmanago
  already has it opted in (`/api/contact/basic`); a `DoubleOptInClaim` row (insert-first, unique per
  store + e-mail + subscription round) makes one subscription ask for one confirmation e-mail,
  whatever the number of deliveries (subscriber created/updated, the order with `is_email_opt_in`).
- Opt-in consent synchronization [7]: a new registration is checked in SALESmanago first; a contact
  that exists and is not opted out keeps its opt-in (sent with `forceOptIn`) and a write-back marks
  the BigCommerce subscriber opted in.

SALESmanago -> BigCommerce. A callback records a `ConsentWriteBack` row and enqueues it; a worker
applies it to the subscribers with the BigCommerce client (same retries, backoff and RemoteCall rows
as deliveries). Before writing, the consent being written is put in the contact ledger, so the
`store/subscriber/updated` echo finds "nothing changed" and is not sent back to SALESmanago.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from huey import crontab
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smbc.bigcommerce.client import BigCommerceClient, CallBuffer
from smbc.bigcommerce.client import for_store as bc_for_store
from smbc.consent.models import ConsentWriteBack, DoubleOptInClaim, KnownSubscriber
from smbc.core.clock import utcnow
from smbc.core.jobs import huey
from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.engine.ledgers import SyncedContact
from smbc.mapping import records as mapping
from smbc.mapping import rules
from smbc.mapping.rules import NO_CONSENT_CHANGE, ConsentFlags
from smbc.realtime import processing as realtime
from smbc.realtime.models import DeliveryStatus, WebhookDelivery
from smbc.realtime.processing import Context, Result
from smbc.settings.store_settings import StoreSettings, load_store_settings

log = logging.getLogger(__name__)

NEWSLETTER = "marketing_newsletter"
OPT_IN = "opt_in"
OPT_OUT = "opt_out"
ACTIONS = (OPT_IN, OPT_OUT)
SOURCE_CALLBACK = "callback"
SOURCE_OPT_IN_SYNC = "opt_in_sync"

T = TypeVar("T")


# -- pure rules ------------------------------------------------------------------------------


def subscriber_consented(subscriber: Mapping[str, Any]) -> bool:
    """Opted in to the newsletter: `marketing_newsletter` among the subscriber's consents."""
    return NEWSLETTER in (subscriber.get("consents") or [])


def opted_in_in_salesmanago(contact: Mapping[str, Any] | None) -> bool:
    """`/api/contact/basic` shows the contact, explicitly not opted out (missing flag: not sure, no)."""
    return contact is not None and contact.get("optedOut") is False


def double_opt_in_for(settings: StoreSettings, language: str | None) -> mapping.DoubleOptIn | None:
    """The double opt-in attributes when [6] is on; the three e-mail fields only when all are set."""
    if not settings.double_opt_in_enabled:
        return None
    fields = (
        settings.double_opt_in_template_id,
        settings.double_opt_in_account_id,
        settings.double_opt_in_subject,
    )
    filled = all(f.strip() for f in fields)
    return mapping.DoubleOptIn(
        language=language,
        template_id=fields[0].strip() if filled else None,
        account_id=fields[1].strip() if filled else None,
        subject=fields[2].strip() if filled else None,
    )


def consents_after(action: str, consents: Iterable[str] | None) -> list[str] | None:
    """A subscriber's consents once `action` is applied; None when nothing needs writing.

    Opt-in adds `marketing_newsletter` (other consents kept); opt-out empties the list (the record
    is kept, reference §3.4)."""
    current = list(dict.fromkeys(consents or []))
    if action == OPT_IN:
        return None if NEWSLETTER in current else [*current, NEWSLETTER]
    if action == OPT_OUT:
        return [] if current else None
    raise ValueError(f"unknown consent action {action!r}")


@dataclass(frozen=True)
class ConsentPlan:
    """What one send to SALESmanago does about consent."""

    flags: ConsentFlags = NO_CONSENT_CHANGE
    tags: tuple[str, ...] = ()
    double_opt_in: mapping.DoubleOptIn | None = None
    note: str = ""
    claim_owner: str | None = None  # a DoubleOptInClaim held by this send
    # Opt-in synchronization: subscriber fields (channel_id, first_name, last_name) to mark opted in.
    write_back: dict[str, Any] | None = None

    @property
    def opted_in(self) -> bool | None:
        """The consent the contact ledger records once sent (None: unchanged)."""
        if self.flags.force_opt_in:
            return True
        if self.flags.force_opt_out:
            return False
        return None

    def apply(self, contact: mapping.ContactUpsert) -> mapping.ContactUpsert:
        return replace(
            contact,
            consent=self.flags,
            tags=(*contact.tags, *self.tags),
            double_opt_in=self.double_opt_in if self.flags.force_opt_in else None,
        )


# -- planning a send (reads the ledger, may ask SALESmanago, may claim the confirmation e-mail) --


def _lang(ctx: Context) -> str | None:
    info = ctx.store.info or {}
    return rules.lang_code(info.get("language") or info.get("locale"))


def last_known_opt_in(session: Session, store_id: int, email: str) -> bool | None:
    """The newsletter consent last sent to (or received from) SALESmanago for the e-mail."""
    return session.scalar(
        select(SyncedContact.opted_in).where(SyncedContact.store_id == store_id, SyncedContact.email == email)
    )


def salesmanago_contact(ctx: Context, email: str) -> dict[str, Any] | None:
    contacts = ctx.sm.contact_basic([email])
    return next((c for c in contacts if rules.normalize_email(c.get("email")) == email), None)


def plan_consent(ctx: Context, email: str, subscribed: bool | None, *, owner: str) -> ConsentPlan:
    """The consent part of a contact send, for `subscribed` (True: subscribes now, False: withdrew,
    None: says nothing). `owner` names the work ("delivery:42") holding a double opt-in claim."""
    with ctx.db.session() as session:
        last = last_known_opt_in(session, ctx.store.id, email)
    flags = rules.consent_flags(subscribed, last)
    if not flags.force_opt_in:
        return ConsentPlan(flags=flags)
    tags = tuple(ctx.settings.tags_newsletter)
    double_opt_in = double_opt_in_for(ctx.settings, _lang(ctx))
    if double_opt_in is None:
        return ConsentPlan(flags=flags, tags=tags)
    if opted_in_in_salesmanago(salesmanago_contact(ctx, email)):
        return ConsentPlan(flags=flags, tags=tags, note="already opted in in SALESmanago: no confirmation")
    busy = claim_double_opt_in(ctx.db, ctx.store.id, email, owner=owner, now=ctx.now)
    if busy:
        return ConsentPlan(note=busy)  # never a plain opt-in while double opt-in is on
    return ConsentPlan(flags=flags, tags=tags, double_opt_in=double_opt_in, claim_owner=owner)


def plan_registration(ctx: Context, customer: Mapping[str, Any], *, registering: bool) -> ConsentPlan:
    """Opt-in consent synchronization [7] for a new registration; no consent change otherwise."""
    if not (registering and ctx.settings.opt_in_sync):
        return ConsentPlan()
    email = rules.normalize_email(customer.get("email"))
    if not opted_in_in_salesmanago(salesmanago_contact(ctx, email)):
        return ConsentPlan(note="not opted in in SALESmanago")
    with ctx.db.session() as session:
        last = last_known_opt_in(session, ctx.store.id, email)
    fields = {
        "channel_id": int(customer.get("origin_channel_id") or 0) or None,
        "first_name": customer.get("first_name") or "",
        "last_name": customer.get("last_name") or "",
    }
    return ConsentPlan(
        flags=rules.consent_flags(True, last),
        note="opt-in kept from SALESmanago",
        write_back=fields,
    )


def send_planned(
    ctx: Context, contact: mapping.ContactUpsert, plan: ConsentPlan, send: Callable[[dict[str, Any]], T]
) -> T:
    """Send `contact` with the plan's consent; then settle the claim, close the subscription round
    on an opt-out and queue the opt-in synchronization's write-back."""
    email = contact.email
    try:
        answer = send(plan.apply(contact).to_payload())
    except BaseException:
        if plan.claim_owner:
            release_double_opt_in(ctx.db, ctx.store.id, email, plan.claim_owner)
        raise
    write_back_id: int | None = None
    with ctx.db.session() as session:
        if plan.claim_owner:
            mark_double_opt_in_sent(session, ctx.store.id, email, plan.claim_owner, ctx.now)
        if plan.flags.force_opt_out:
            close_subscription_round(session, ctx.store.id, email)
        if plan.write_back is not None:
            fields = dict(plan.write_back)
            row = record_write_back(
                session,
                ctx.store.id,
                email,
                OPT_IN,
                source=SOURCE_OPT_IN_SYNC,
                channel_id=fields.pop("channel_id", None),
                subscriber_fields=fields,
            )
            write_back_id = row.id
    if write_back_id is not None:
        enqueue_write_back(write_back_id)
    return answer


# -- double opt-in claims --------------------------------------------------------------------


def _round(session: Session, store_id: int, email: str) -> int:
    closed = session.scalar(
        select(func.count())
        .select_from(DoubleOptInClaim)
        .where(
            DoubleOptInClaim.store_id == store_id,
            DoubleOptInClaim.email == email,
            DoubleOptInClaim.closed.is_(True),
        )
    )
    return int(closed or 0) + 1


def claim_double_opt_in(db: Database, store_id: int, email: str, *, owner: str, now: datetime) -> str | None:
    """Insert-first claim of the current subscription's confirmation e-mail. None: ours to ask for;
    otherwise why not."""
    with db.session() as session:
        round_ = _round(session, store_id, email)
    try:
        with db.session() as session:
            session.add(
                DoubleOptInClaim(
                    store_id=store_id, email=email, round=round_, claimed_by=owner, claimed_at=now
                )
            )
        return None
    except IntegrityError:
        pass
    with db.session() as session:
        row = session.scalars(
            select(DoubleOptInClaim).where(
                DoubleOptInClaim.store_id == store_id,
                DoubleOptInClaim.email == email,
                DoubleOptInClaim.round == round_,
            )
        ).first()
        if row is None or row.closed:
            return "confirmation e-mail claimed and released meanwhile; not asked again"
        if row.state == "sent":
            return "confirmation e-mail already requested for this subscription"
        if row.claimed_by == owner or now - row.claimed_at > realtime.STALE_LOCK:
            row.claimed_by, row.claimed_at = owner, now  # our earlier attempt, or a dead worker's
            return None
        return f"confirmation e-mail being requested by {row.claimed_by}"


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


# -- the subscriber index ----------------------------------------------------------------------


def index_subscriber(
    session: Session, store_id: int, subscriber_id: int, email: str, consented: bool
) -> None:
    row = session.scalars(
        select(KnownSubscriber).where(
            KnownSubscriber.store_id == store_id, KnownSubscriber.subscriber_id == subscriber_id
        )
    ).first()
    if row is None:
        row = KnownSubscriber(store_id=store_id, subscriber_id=subscriber_id, email=email)
        session.add(row)
    row.email, row.consented, row.updated_at = email, consented, utcnow()


def _index_insert(db: Database, store_id: int, subscriber_id: int, email: str, consented: bool) -> None:
    try:
        with db.session() as session:
            index_subscriber(session, store_id, subscriber_id, email, consented)
    except IntegrityError:  # another worker indexed it first: update theirs
        with db.session() as session:
            index_subscriber(session, store_id, subscriber_id, email, consented)


# -- deliveries: subscriber created / updated / deleted ----------------------------------------


def handle_subscriber(ctx: Context, delivery: WebhookDelivery) -> Result:
    subscriber_id = int(delivery.resource_id or 0)
    subscriber = ctx.prefetched.get("subscriber", {}).get(subscriber_id)
    if subscriber is None and "subscriber" not in ctx.prefetched:
        subscriber = ctx.bc.subscriber(subscriber_id)
    if subscriber is None:
        return Result.skipped("subscriber no longer exists in BigCommerce")
    email = rules.normalize_email(subscriber.get("email"))
    subscribed = subscriber_consented(subscriber)
    _index_insert(ctx.db, ctx.store.id, subscriber_id, email, subscribed)
    problem = rules.email_problem(email, ctx.settings.ignored_domains)
    if problem:
        return Result.skipped(problem)
    plan = plan_consent(ctx, email, subscribed, owner=f"delivery:{delivery.id}")
    if not plan.flags.changes:
        return Result.done(plan.note or "newsletter consent unchanged")
    contact = mapping.ContactUpsert(
        email=email,
        owner=ctx.owner,
        name=mapping.join_name(subscriber.get("first_name"), subscriber.get("last_name")),
        lang=_lang(ctx),
    )
    contact_id = send_planned(ctx, contact, plan, ctx.sm.upsert_contact)
    with ctx.db.session() as session:
        realtime.remember_contact(session, ctx.store.id, email, contact_id=contact_id, opted_in=plan.opted_in)
    if plan.flags.force_opt_out:
        return Result.done("opted out")
    return Result.done("opted in, confirmation e-mail requested" if plan.double_opt_in else "opted in")


def handle_subscriber_deleted(ctx: Context, delivery: WebhookDelivery) -> Result:
    subscriber_id = int(delivery.resource_id or 0)
    with ctx.db.session() as session:
        known = session.scalars(
            select(KnownSubscriber).where(
                KnownSubscriber.store_id == ctx.store.id, KnownSubscriber.subscriber_id == subscriber_id
            )
        ).first()
        if known is None:
            return Result.done("subscriber deleted; the app never saw its e-mail")
        email = known.email
        others = session.scalars(
            select(KnownSubscriber.id).where(
                KnownSubscriber.store_id == ctx.store.id,
                KnownSubscriber.email == email,
                KnownSubscriber.subscriber_id != subscriber_id,
                KnownSubscriber.consented.is_(True),
            )
        ).first()

    def forget() -> None:
        with ctx.db.session() as session:
            session.execute(
                KnownSubscriber.__table__.delete().where(
                    KnownSubscriber.store_id == ctx.store.id, KnownSubscriber.subscriber_id == subscriber_id
                )
            )

    if others is not None:
        forget()
        return Result.done("subscriber deleted; another subscriber with this e-mail is subscribed")
    problem = rules.email_problem(email, ctx.settings.ignored_domains)
    if problem:
        forget()
        return Result.skipped(problem)
    plan = plan_consent(ctx, email, False, owner=f"delivery:{delivery.id}")
    if not plan.flags.changes:
        forget()
        return Result.done("subscriber deleted; newsletter consent unchanged")
    contact_id = send_planned(
        ctx, mapping.ContactUpsert(email=email, owner=ctx.owner), plan, ctx.sm.upsert_contact
    )
    with ctx.db.session() as session:
        realtime.remember_contact(session, ctx.store.id, email, contact_id=contact_id, opted_in=False)
    forget()
    return Result.done("subscriber deleted: opted out")


# -- write-backs to BigCommerce ----------------------------------------------------------------


def record_write_back(
    session: Session,
    store_id: int,
    email: str,
    action: str,
    *,
    source: str,
    channel_id: int | None = None,
    subscriber_fields: dict[str, Any] | None = None,
) -> ConsentWriteBack:
    if action not in ACTIONS:
        raise ValueError(f"unknown consent action {action!r}")
    row = ConsentWriteBack(
        store_id=store_id,
        email=rules.normalize_email(email),
        action=action,
        source=source,
        channel_id=channel_id,
        subscriber_fields=dict(subscriber_fields or {}),
        status=DeliveryStatus.PENDING.value,
    )
    session.add(row)
    session.flush()
    return row


@huey.task()
def write_back_task(write_back_id: int) -> None:
    apply_write_back(write_back_id)


def enqueue_write_back(write_back_id: int) -> None:
    """Ask a worker to apply the row now; if the queue is down, the sweep finds the row later."""
    try:
        write_back_task(write_back_id)
    except Exception:
        log.warning(
            "could not enqueue write-back %s; the sweep will pick it up", write_back_id, exc_info=True
        )


def _due(now: datetime):
    return and_(
        ConsentWriteBack.status == DeliveryStatus.PENDING.value,
        or_(ConsentWriteBack.next_attempt_at.is_(None), ConsentWriteBack.next_attempt_at <= now),
    )


@dataclass
class _Work:
    row: ConsentWriteBack
    store: Store | None
    settings: StoreSettings
    newer: int | None
    calls: CallBuffer = field(default_factory=CallBuffer)


def apply_write_back(write_back_id: int, *, db: Database | None = None) -> Result | None:
    """Apply one write-back row to BigCommerce (None: not due, or another worker has it)."""
    from smbc.core.runtime import get_runtime

    db = db or get_runtime().db
    now = utcnow()
    with db.session() as session:
        claimed = session.execute(
            update(ConsentWriteBack)
            .where(ConsentWriteBack.id == write_back_id, _due(now))
            .values(
                status=DeliveryStatus.PROCESSING.value, locked_at=now, attempts=ConsentWriteBack.attempts + 1
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            return None
    with db.session() as session:
        row = session.get(ConsentWriteBack, write_back_id)
        assert row is not None
        store = session.get(Store, row.store_id)
        settings = load_store_settings(session, row.store_id)
        newer = session.scalar(
            select(ConsentWriteBack.id)
            .where(
                ConsentWriteBack.store_id == row.store_id,
                ConsentWriteBack.email == row.email,
                ConsentWriteBack.id > row.id,
            )
            .order_by(ConsentWriteBack.id.desc())
            .limit(1)
        )
        session.expunge_all()
    work = _Work(row, store, settings, newer, CallBuffer(context=f"consent:{write_back_id}"))
    error: RemoteCallError | None = None
    if store is None or not store.installed:
        result = Result.skipped("store uninstalled")
    elif newer is not None:
        result = Result.done(f"superseded by write-back {newer}")  # the latest callback decides
    elif store.sync_paused_reason == realtime.PAUSE_BC_CREDENTIALS:
        result = Result(DeliveryStatus.WAITING, f"sync paused: {store.sync_paused_reason}")
    else:
        try:
            bc = bc_for_store(store, recorder=work.calls, context=work.calls.context)
            result = _write(db, bc, work)
        except RemoteCallError as exc:
            error = exc
            result = _from_error(exc)
        except Exception as exc:  # a bug must not lose the consent: retry later, keep the error
            log.exception("write-back %s failed", write_back_id)
            result = Result.retry(f"internal error: {type(exc).__name__}: {exc}")
    _finish(db, work, result, now, error)
    return result


def _from_error(exc: RemoteCallError) -> Result:
    if exc.outcome.retryable:
        return Result.retry(exc.message, exc.retry_after)
    if exc.outcome is Outcome.CREDENTIALS:
        return Result(DeliveryStatus.WAITING, "sync paused: credentials", error=exc.message)
    return Result(DeliveryStatus.FAILED, "refused", error=exc.message)


def _write(db: Database, bc: BigCommerceClient, work: _Work) -> Result:
    row = work.row
    subscribers = [
        s
        for s in bc.subscribers(email=row.email).items()
        if rules.normalize_email(s.get("email")) == row.email
    ]
    if not subscribers and row.action == OPT_OUT:
        return Result.done("no subscriber with this e-mail: nothing to opt out")
    changes = [(s, consents_after(row.action, s.get("consents"))) for s in subscribers]
    changes = [(s, c) for s, c in changes if c is not None]
    if subscribers and not changes:
        return Result.done("already opted in" if row.action == OPT_IN else "already opted out")
    opted_in = row.action == OPT_IN
    # Echo suppression: the ledger holds the consent BigCommerce is about to report back, before the
    # write, so the `store/subscriber/*` echo is "nothing changed" and is not sent to SALESmanago.
    with db.session() as session:
        realtime.remember_contact(session, row.store_id, row.email, opted_in=opted_in)
        if not opted_in:
            close_subscription_round(session, row.store_id, row.email)
    if not subscribers:
        return _create_subscriber(db, bc, work)
    for subscriber, consents in changes:
        bc.set_subscriber_consents(int(subscriber["id"]), consents)
        _index_insert(db, row.store_id, int(subscriber["id"]), row.email, opted_in)
    ids = ", ".join(str(s["id"]) for s, _ in changes)
    return Result.done(f"subscriber {ids} {'opted in' if opted_in else 'opted out (consents emptied)'}")


def _create_subscriber(db: Database, bc: BigCommerceClient, work: _Work) -> Result:
    row = work.row
    channel_id = row.channel_id or work.settings.newsletter_channel
    fields = {
        k: v for k, v in (row.subscriber_fields or {}).items() if k in ("first_name", "last_name") and v
    }
    body = {
        "email": row.email,
        "channel_id": channel_id,
        "source": "custom",
        "consents": [NEWSLETTER],
        **fields,
    }
    try:
        created = bc.create_subscriber(body)
    except RemoteCallError as exc:
        if exc.status != 409:
            raise
        # Created meanwhile (by the shopper or another write-back): retry, which will update it.
        return Result.retry("a subscriber with this e-mail was created meanwhile", 1.0)
    if created.get("id"):
        _index_insert(db, row.store_id, int(created["id"]), row.email, True)
    return Result.done(f"subscriber {created.get('id')} created on channel {channel_id}, opted in")


def _finish(db: Database, work: _Work, result: Result, now: datetime, error: RemoteCallError | None) -> None:
    row = work.row
    with db.session() as session:
        work.calls.flush(session)
        if work.store is not None and error is not None and error.outcome is Outcome.CREDENTIALS:
            session.execute(
                update(Store)
                .where(Store.id == work.store.id, Store.sync_paused_reason.is_(None))
                .values(sync_paused_reason=realtime.PAUSE_BC_CREDENTIALS)
            )
        values: dict[str, Any] = {
            "status": result.status.value,
            "reason": result.reason[:255],
            "locked_at": None,
        }
        if result.error:
            values["last_error"] = result.error[:2000]
        if result.status is DeliveryStatus.PENDING:
            if now - row.received_at >= realtime.GIVE_UP_AFTER:
                values.update(status=DeliveryStatus.FAILED.value, reason="gave up after 24 h of retries")
            else:
                wait = realtime.retry_delay(row.attempts)
                if result.retry_after and result.exact:
                    wait = timedelta(seconds=result.retry_after)
                elif result.retry_after:
                    wait = max(wait, timedelta(seconds=result.retry_after))
                values["next_attempt_at"] = now + wait
        elif result.status is not DeliveryStatus.WAITING:
            values["processed_at"] = now
        session.execute(update(ConsentWriteBack).where(ConsentWriteBack.id == row.id).values(**values))


def due_write_back_ids(db: Database, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Rows a worker should apply now: due retries, rows whose queue message was lost, rows held by a
    worker that died, and rows that waited for a BigCommerce credentials pause since lifted."""
    now = now or utcnow()
    with db.session() as session:
        not_paused = select(Store.id).where(
            Store.status == "installed",
            or_(
                Store.sync_paused_reason.is_(None), Store.sync_paused_reason != realtime.PAUSE_BC_CREDENTIALS
            ),
        )
        return realtime.due_row_ids(session, ConsentWriteBack, now, limit, resumable_stores=not_paused)


def sweep_write_backs(db: Database | None = None, now: datetime | None = None) -> int:
    from smbc.core.runtime import get_runtime

    ids = due_write_back_ids(db or get_runtime().db, now)
    for write_back_id in ids:
        enqueue_write_back(write_back_id)
    return len(ids)


@huey.periodic_task(crontab(minute="*"))
def sweep_write_backs_task() -> None:
    sweep_write_backs()
