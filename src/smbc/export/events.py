"""The events export: orders created in the range (`/v2/orders` in ascending id order, two reads at
once by id windows: see `order_windows`; line items included), mapped exactly as real time maps
them (PURCHASE, CANCELLATION after a PURCHASE, RETURN per refund: the refunds listed once, see
`order_reads`), buyers made sure to exist first (ahead in `batchupsertv2`: see `buyers`), then
`addBatchContactExtEvent`, whose answer may report events failed (`failedContacts`): those are not
marked sent; their buyers are upserted and they are sent once more, and what fails again is
released and counted (`Export.failed_events`), so a later export
sends it. Each (order, type) is claimed in the
`sent_events` ledger real time uses before sending, so anything already sent (by real time or an
earlier export) is skipped and running an export twice sends nothing new.

Never a batch twice: the claim of a batch's ledger rows and the `inflight` marker are committed in
one transaction right before the events call; the answer is committed with the cursor in the next.
SALESmanago has no way to read events back, so a batch left `inflight` by a dead worker (killed while
SALESmanago was receiving it) is NOT sent again: its events are recorded as sent and counted as
`unconfirmed`. A request that was written almost always arrives, so this errs towards "once" rather
than "twice", which the merchant's reports and automations would show. A failure that certainly left
nothing at SALESmanago (an error answer, a refused connection) releases the claims and the batch is
planned again after a backoff."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from smbc.consent.plan import consent_plan_for, last_known_opt_ins
from smbc.core.clock import utcnow
from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.engine.ledgers import SENT_STATES, SentEvent
from smbc.engine.read_ahead import Idle, ReadAhead
from smbc.export.buyers import PAGE_IDLE_S, UPSERTS_AT_ONCE, buyers_ahead, upsert_buyers, upserts_at_once
from smbc.export.job import (
    UNCONFIRMED_HINT,
    BatchResult,
    Job,
    commit_batch,
    in_range,
    locked_row,
    reason_category,
)
from smbc.export.ledger import (
    ContactSent,
    claim_events,
    mark_all_sent,
    mark_sent_by_id,
    mark_unconfirmed,
    orders_ledger,
    release_claims,
    release_events,
    remember_contacts,
)
from smbc.export.models import FAILED_EVENTS_REASON, Export
from smbc.export.order_reads import forget_refunds, order_pages, orders_left, refunds_of
from smbc.export.plans import BatchContacts, OrderPlan, PlannedEvent, batch_contacts, payload_dict
from smbc.mapping import records as mapping
from smbc.mapping import rules
from smbc.mapping.rules import EventKind
from smbc.salesmanago.answers import BatchEventsAdded
from smbc.salesmanago.payload import CleanedPayload


def _plan_page(job: Job, orders: list[dict[str, Any]]) -> list[OrderPlan]:
    """Map one page of orders as real time would, leaving out what the ledger already has."""
    ids = [int(o["id"]) for o in orders]
    refunds = refunds_of(job, orders)
    with job.db.session() as session:
        ledger = orders_ledger(session, job.store.id, ids)
        emails = [mapping.order_email(o) for o in orders]
        known = last_known_opt_ins(session, job.store.id, set(emails))
    return [
        _plan_order(job, order, email, refunds.get(order_id, []), ledger, known)
        for order, email, order_id in zip(orders, emails, ids, strict=True)
    ]


def _plan_order(
    job: Job,
    order: dict[str, Any],
    email: str,
    refunds: list[dict[str, Any]],
    ledger: dict[tuple[str, str], str],
    known: dict[str, bool | None],
) -> OrderPlan:
    order_id = int(order["id"])
    plan = OrderPlan(order_id)
    if not in_range(job, order.get("date_created")):
        plan.in_range = False  # BigCommerce's filter let it through: not ours to count
        return plan
    problem = rules.email_problem(email, job.settings.ignored_domains)
    if problem:
        plan.skipped[reason_category(problem)] += 1
        return plan
    status_id = int(order.get("status_id") or 0)
    kind = rules.order_event_kind(status_id, job.settings.purchase_statuses)
    wanted: list[tuple[EventKind, str, dict[str, Any] | None]] = []
    if kind is EventKind.PURCHASE:
        wanted.append((kind, str(order_id), None))
    elif kind is EventKind.CANCELLATION:
        if ledger.get((EventKind.PURCHASE.value, str(order_id))) in SENT_STATES:
            wanted.append((kind, str(order_id), None))
        else:
            plan.skipped["cancelled before any PURCHASE was sent"] += 1
    elif not refunds:
        plan.skipped["order status sends no event"] += 1
    for refund in refunds:
        wanted.append((EventKind.RETURN, str(refund.get("id")), refund))
    todo = []
    for event_kind, key, refund in wanted:
        if (event_kind.value, key) in ledger:
            plan.skipped["already sent"] += 1
        else:
            todo.append((event_kind, key, refund))
    if not todo:
        return plan
    items = mapping.order_line_items(order)
    if items is None:
        items = job.bc.order_products(order_id)
    channel_id = int(order.get("channel_id") or 1)
    origin = job.origins.get(channel_id)
    if origin is None:
        location = mapping.channel_location(job.settings, job.store.sites or [], channel_id)
        origin = job.origins[channel_id] = mapping.EventOrigin.of(job.settings, location)
    for event_kind, key, refund in todo:
        if refund is not None:
            event = mapping.return_event(order, refund, items, origin=origin)
        else:
            modified = mapping.parse_bc_date(order.get("date_modified"))
            event = mapping.order_event(
                order,
                items,
                kind=event_kind,
                origin=origin,
                date=None if event_kind is EventKind.PURCHASE else modified,
                email=email,
            )
        # Cleaned already (a normalized e-mail, a cleaned event): the client's cleaning skips it.
        item = CleanedPayload(email=email, contactEvent=event.contact_event())
        plan.events.append(PlannedEvent(event_kind, key, order_id, email, item))
    # The buyer as real time sends it with a PURCHASE: billing data, purchase/guest tags, and the
    # checkout's newsletter box (an unticked box says nothing, so nobody is opted in by accident).
    subscribed = True if order.get("is_email_opt_in") else None
    consent = consent_plan_for(
        subscribed,
        known.get(email),
        settings=job.settings,
        language=job.lang(),
        double_opt_in=job.double_opt_in,
    )
    # As consent.apply(contact_from_order(...)).to_payload(), built directly (a sixth of planning).
    double_opt_in = consent.double_opt_in if consent.flags.force_opt_in else None
    payload = mapping.buyer_payload(
        order,
        owner=job.owner,
        settings=job.settings,
        consent=consent.flags,
        extra_tags=consent.tags,
        double_opt_in=double_opt_in,
    )
    plan.contact = (email, payload, subscribed)
    return plan


def _order_plans(job: Job, left: int | None) -> Iterator[OrderPlan | Idle]:
    """The orders' plans, and `IDLE` while the next page is slow to come (quota, latency), so that
    batches whose buyers went ahead are sent meanwhile (`buyers_ahead`)."""
    for page in ReadAhead(order_pages(job, left)).idling(PAGE_IDLE_S):
        if isinstance(page, Idle):
            yield page
        else:
            yield from _plan_page(job, page)


def plan_batches(plans: Iterable[OrderPlan | Idle], batch_size: int) -> Iterator[list[OrderPlan] | Idle]:
    """Whole orders per batch, at most `batch_size` events each (an order with more events than that
    goes alone); orders that send nothing ride along, so the cursor moves past them too. `IDLE`
    passes through as it comes, the batch being filled left as it is."""
    batch: list[OrderPlan] = []
    count = 0
    for plan in plans:
        if isinstance(plan, Idle):
            yield plan
            continue
        if batch and count + len(plan.events) > batch_size:
            yield batch
            batch, count = [], 0
        batch.append(plan)
        count += len(plan.events)
        if count >= batch_size:
            yield batch
            batch, count = [], 0
    if batch:
        yield batch


def event_batches(job: Job) -> Iterator[Export]:
    """Each batch sent and recorded, in order. A batch is sent on the `export-send` thread while this
    one plans the next (its pages mapped, its new buyers sent ahead): the SALESmanago round trips and
    the ledger's commits overlap the mapping instead of adding to it. Only one batch is ever sent at
    a time, and none is in flight when a batch is yielded, so a time slice or a cancellation that
    stops here leaves no send behind (the next batch was only planned: it is planned again)."""
    left = orders_left(job)
    # One pool for the run's new buyers (threads started once, not once a batch); between batches
    # none of its calls is pending, so closing it here never waits for one.
    with (
        ThreadPoolExecutor(UPSERTS_AT_ONCE, thread_name_prefix="export-upsert") as job.upserts,
        ThreadPoolExecutor(1, thread_name_prefix="export-send") as sender,
    ):
        batches = buyers_ahead(job, plan_batches(_order_plans(job, left), job.batch_size))
        planned = next(batches, None)
        while planned is not None:
            sending = sender.submit(_send_events, job, *planned)
            planning_failed: BaseException | None = None
            try:
                planned = next(batches, None)
            except Exception as exc:  # raised once the batch being sent is recorded
                planning_failed, planned = exc, None
            yield sending.result()  # a failed send raises here; the batch planned meanwhile is dropped
            if planning_failed is not None:
                raise planning_failed
    forget_refunds(job)


def _send_events(job: Job, batch: list[OrderPlan], ahead: set[str]) -> Export:
    result = BatchResult(done=sum(1 for plan in batch if plan.in_range))
    for plan in batch:
        result.skipped.update(plan.skipped)
    after_id = max(plan.order_id for plan in batch)
    planned = [event for plan in batch for event in plan.events]
    if not planned:
        job.cursor["after_id"] = after_id
        return commit_batch(job, result)
    # 1. Buyers first (idempotent, so a crash here only means they are upserted again).
    contacts = batch_contacts(batch)
    contact_ids, refused = upsert_buyers(job, contacts, ahead, result, job.batches + 1)
    if refused:  # SALESmanago refused the buyer itself: its events cannot be stored, nor claimed
        kept = [e for e in planned if e.email not in refused]
        result.failed["buyer refused by SALESmanago"] += len(planned) - len(kept)
        planned = kept
        if not planned:
            job.cursor["after_id"] = after_id
            return commit_batch(job, result)
    # 2. Claim the events (insert first) and mark the batch in flight, in one transaction.
    job.batches += 1
    batch_no = job.batches
    owner = f"{job.claim_prefix}{batch_no}"
    now = utcnow()
    mine: set[tuple[str, str]] = set()

    def claim(session: Session) -> None:
        claim_events(
            session, job.store.id, owner, now, [(e.kind.value, e.key, e.order_id, e.email) for e in planned]
        )
        rows = session.execute(
            select(SentEvent.kind, SentEvent.key).where(
                SentEvent.store_id == job.store.id, SentEvent.claimed_by == owner
            )
        ).all()
        mine.update((kind, key) for kind, key in rows)
        job.cursor["inflight"] = {
            "batch": batch_no,
            "after_id": after_id,
            "orders": len(batch),
            "events": len(mine),
            "skipped": dict(result.skipped + Counter({"already sent": len(planned) - len(mine)})),
        }

    with job.db.session() as session:
        row = locked_row(session, job)
        claim(session)
        row.cursor = dict(job.cursor)
        row.batches = job.batches
        row.heartbeat_at = now
    sending = [e for e in planned if (e.kind.value, e.key) in mine]
    result.skipped["already sent"] += len(planned) - len(sending)
    if not sending:
        job.cursor.pop("inflight")
        job.cursor["after_id"] = after_id
        return commit_batch(job, result)
    # 3. Send once; events SALESmanago reports failed get their buyer upserted and are sent once more;
    #    the answers are recorded with the cursor.
    try:
        answer = job.sm_once.add_batch_events([e.item for e in sending])
    except RemoteCallError as exc:
        return _events_failed(job, exc, sending, result, owner, after_id, batch_no)
    fate = _EventFate()
    _read_failures(answer, sending, fate, result, batch_no)
    if fate.retry:
        _send_again(job, contacts, contact_ids, fate, result, batch_no)
    sent = [e for e in sending if _ref(e) not in fate.failed and _ref(e) not in fate.unconfirmed]
    result.sent += len(sent) + len(fate.unconfirmed)
    result.unconfirmed += len(fate.unconfirmed)
    refused_events = sum(1 for e in fate.retry if e.email in fate.refused)
    if refused_events:  # their buyer went ahead, SALESmanago refused it when upserted on its own
        result.failed["buyer refused by SALESmanago"] += refused_events
        refused |= fate.refused
    if len(fate.failed) > refused_events:
        result.failed[FAILED_EVENTS_REASON] += len(fate.failed) - refused_events
    job.cursor.pop("inflight")
    job.cursor["after_id"] = after_id

    def mark_sent(session: Session) -> None:
        sent_at = utcnow()
        release_events(session, job.store.id, owner, sorted(fate.failed))
        if fate.unconfirmed:
            refs = [(e.kind.value, e.key, e.email) for e in sent]
            mark_sent_by_id(session, job.store.id, owner, refs, contact_ids, sent_at)
        else:  # every claim left is sent: one statement, and the new buyers' contact ids by e-mail
            mark_all_sent(session, job.store.id, owner, [e.email for e in sent], contact_ids, sent_at)
        mark_unconfirmed(session, job.store.id, owner, sent_at)  # what is left claimed
        remember_contacts(
            session,
            job.store.id,
            [
                ContactSent(email, contact_ids.get(email), None, subscribed)
                for email, (_, subscribed) in contacts.items()
                if email not in refused
            ],
        )

    return commit_batch(job, result, extra=mark_sent)


def _ref(event: PlannedEvent) -> tuple[str, str]:
    return (event.kind.value, event.key)


@dataclass
class _EventFate:
    """What became of a batch's events besides being stored: to send again, failed for good, or
    unconfirmed (SALESmanago may have them); each a set of (kind, key)."""

    retry: list[PlannedEvent] = field(default_factory=list)
    failed: set[tuple[str, str]] = field(default_factory=set)
    unconfirmed: set[tuple[str, str]] = field(default_factory=set)
    refused: set[str] = field(default_factory=set)  # buyers SALESmanago refused when upserted again


def _failures(answer: BatchEventsAdded, events: list[PlannedEvent]) -> tuple[list[PlannedEvent], bool]:
    """(the events of the contacts the answer names as failed, whether it reports failures it does not
    let us place). UNCONFIRMED whether `failedContacts` holds e-mails or contact ids: we send e-mails
    and match those; a name we cannot match, or more failures than the names cover, is unplaced."""
    counted = answer.failedAmount or 0
    if answer.failedContacts is None:
        return [], counted > 0
    named = {reference.strip().lower() for reference in answer.failedContacts}
    failed = [e for e in events if e.email in named]
    unplaced = bool(named - {e.email for e in events}) or counted > len(failed)
    return failed, unplaced


def _read_failures(
    answer: BatchEventsAdded,
    sending: list[PlannedEvent],
    fate: _EventFate,
    result: BatchResult,
    batch_no: int,
) -> None:
    """The events the answer reports failed: those of the contacts it names are sent again. Failures
    it reports without our knowing which events leave the rest of the batch unconfirmed (none is sent
    twice by the export itself)."""
    fate.retry, unplaced = _failures(answer, sending)
    if unplaced:
        retrying = {_ref(e) for e in fate.retry}
        fate.unconfirmed = {_ref(e) for e in sending} - retrying
        result.messages.append(
            f"Batch {batch_no}: SALESmanago reported {answer.failedAmount or 'some'} events failed "
            f"without naming their contacts; {len(fate.unconfirmed)} events count as unconfirmed. "
            + UNCONFIRMED_HINT
        )


def _send_again(
    job: Job,
    contacts: BatchContacts,
    contact_ids: dict[str, str],
    fate: _EventFate,
    result: BatchResult,
    batch_no: int,
) -> None:
    """Failed events once more, after their buyers were upserted synchronously (the ledger knew them,
    but SALESmanago did not have them: deleted there, or still in an asynchronous batch)."""
    retry: list[PlannedEvent] = []
    emails = [email for email in dict.fromkeys(e.email for e in fate.retry) if email in contacts]
    buyers = [payload_dict(contacts[email][0]) for email in emails]
    answers = dict(zip(emails, upserts_at_once(job, buyers), strict=True))
    for email in dict.fromkeys(e.email for e in fate.retry):
        events = [e for e in fate.retry if e.email == email]
        contact_id = None
        answer = answers.get(email)
        # The batch's answer is in hand: any failure now ends these events as failed, not the run.
        if isinstance(answer, RemoteCallError):
            result.messages.append(f"Batch {batch_no}: a buyer could not be upserted: {answer.message}"[:500])
        elif isinstance(answer, BaseException):
            raise answer
        elif answer is not None:
            contact_id, refusal = answer
            if contact_id is None:
                fate.refused.add(email)
                result.messages.append(f"Batch {batch_no}: SALESmanago refused a buyer: {refusal}"[:500])
        if contact_id is None:
            fate.failed.update(_ref(e) for e in events)
        else:
            contact_ids[email] = contact_id
            retry += events
    if retry:
        try:
            again = job.sm_once.add_batch_events([e.item for e in retry])
        except RemoteCallError as exc:
            lost = exc.status is None and not exc.never_sent  # it may have arrived
            (fate.unconfirmed if lost else fate.failed).update(_ref(e) for e in retry)
        else:
            failed, unplaced = _failures(again, retry)
            fate.failed.update(_ref(e) for e in failed)
            if unplaced:
                fate.unconfirmed.update(_ref(e) for e in retry if e not in failed)
    stored = len(fate.retry) - len(fate.failed) - len(fate.unconfirmed & {_ref(e) for e in fate.retry})
    result.messages.append(
        f"Batch {batch_no}: SALESmanago reported {len(fate.retry)} events failed (their contact did not "
        f"exist there); sent again after upserting it: {stored} stored, {len(fate.failed)} failed."
    )


def _events_failed(
    job: Job,
    exc: RemoteCallError,
    sending: list[PlannedEvent],
    result: BatchResult,
    owner: str,
    after_id: int,
    batch_no: int,
) -> Export:
    """Nothing arrived (an error answer, no connection): release the claims; a refusal is counted and
    the export goes on; anything retryable is planned again after a backoff. No answer at all after
    the request went out: SALESmanago may have it, so it counts as sent (unconfirmed)."""
    may_have_arrived = exc.status is None and not exc.never_sent
    if may_have_arrived:
        job.cursor.pop("inflight", None)
        job.cursor["after_id"] = after_id
        result.sent += len(sending)
        result.unconfirmed += len(sending)
        result.messages.append(
            f"Batch {batch_no}: no answer from SALESmanago ({exc.message}); the {len(sending)} events "
            "were not sent again, so nothing is duplicated. " + UNCONFIRMED_HINT
        )

        def mark(session: Session) -> None:
            mark_unconfirmed(session, job.store.id, owner, utcnow())

        return commit_batch(job, result, extra=mark)

    def release(session: Session) -> None:
        release_claims(session, job.store.id, owner)

    job.cursor.pop("inflight", None)
    if exc.outcome is Outcome.INVALID:
        job.cursor["after_id"] = after_id
        result.failed["refused by SALESmanago"] += len(sending)
        result.messages.append(f"Batch {batch_no}: SALESmanago refused it: {exc.message}"[:500])
        return commit_batch(job, result, extra=release)
    with job.db.session() as session:  # the cursor stays before this batch: it is planned again
        row = locked_row(session, job)
        release(session)
        row.cursor = dict(job.cursor)
    raise exc
