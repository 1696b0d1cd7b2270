"""The events export's buyers, made sure to exist at SALESmanago before their events.

Every buyer of a batch goes ahead of its events in `batchupsertv2` (one request for up to a batch's
size, new buyers and known ones whose data it brings up to date alike), which SALESmanago applies
some time after answering. A batch with a buyer the contact ledger does not know (a guest, mostly)
then waits until `BUYERS_LEAD_S` have passed since, while the next batches are read and planned.
An event whose buyer is still missing by then is reported failed by SALESmanago and goes again
after its buyer's synchronous `/api/contact/upsert` (events._send_again), so a slower SALESmanago
costs time, never events. A `batchupsertv2` refused as a whole leaves its buyers to `upsert_buyers`,
as before their events (the new ones one by one)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import wait
from dataclasses import dataclass
from typing import Any

from smbc.core.clock import get_clock
from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.engine.read_ahead import Idle
from smbc.export.job import BatchResult, Job
from smbc.export.ledger import known_contacts
from smbc.export.plans import BatchContacts, OrderPlan, batch_contacts, hold_encoded, payload_dict

# How long after a `batchupsertv2` its buyers' events are sent: the sandbox applies a batch 2 s after
# answering it; SALESmanago's own delay is not published (a longer one only sends more events twice).
BUYERS_LEAD_S = 2.0
# How long a wait for the next page lets batches whose time has come be sent meanwhile.
PAGE_IDLE_S = 0.1
# Batches planned and waiting for their buyers at most (memory; each is held as its JSON: the 100,000
# order benchmark peaked lower with 20 held than with 10 as dicts): past this, the oldest one waits.
# While most buyers are new this caps the export at BATCHES_AHEAD / BUYERS_LEAD_S batches a second
# (10: 42 s for 100,000 orders, past the quota's pace).
BATCHES_AHEAD = 20
# New buyers' synchronous upserts in flight at once. SALESmanago publishes no rate limit (real time's
# workers already call it in parallel); a few at once keeps well clear of one, 429s back off as usual.
UPSERTS_AT_ONCE = 4


@dataclass
class _Waiting:
    batch: list[OrderPlan]
    ahead: set[str]
    due: float  # the clock's monotonic() when its events may go


def buyers_ahead(
    job: Job, batches: Iterable[list[OrderPlan] | Idle]
) -> Iterator[tuple[list[OrderPlan], set[str]]]:
    """Each batch with the e-mails of its new buyers sent ahead by `batchupsertv2`, in order, each
    once `BUYERS_LEAD_S` have passed since (waiting only when nothing else is left to plan).
    `IDLE` (the next page is slow to come) sends the batches whose time has come."""
    waiting: deque[_Waiting] = deque()
    for batch in batches:
        if isinstance(batch, Idle):
            while waiting and waiting[0].due <= get_clock().monotonic():
                first = waiting.popleft()
                yield first.batch, first.ahead
            continue
        ahead, any_new = upsert_ahead(job, batch_contacts(batch))
        due = get_clock().monotonic() + BUYERS_LEAD_S if any_new else 0.0  # known ones exist already
        if any_new or waiting:  # it waits: held as it is sent, so that more batches wait within memory
            hold_encoded(batch)
        waiting.append(_Waiting(batch, ahead, due))
        while waiting and (waiting[0].due <= get_clock().monotonic() or len(waiting) > BATCHES_AHEAD):
            first = waiting.popleft()
            _sleep_until(first.due)
            yield first.batch, first.ahead
    while waiting:
        first = waiting.popleft()
        _sleep_until(first.due)
        yield first.batch, first.ahead


def _sleep_until(due: float) -> None:
    # On the app's clock, so a test's FakeClock (shared with the fake SALESmanago) passes it at once.
    left = due - get_clock().monotonic()
    if left > 0:
        get_clock().sleep(left)


def upsert_ahead(job: Job, contacts: BatchContacts) -> tuple[set[str], bool]:
    """Send a batch's buyers in `batchupsertv2` (a batch_size each), on the planning side: (their
    e-mails, whether the contact ledger did not know one of them), or (none, False) when SALESmanago
    refused a request: `upsert_buyers` then sends them as before their events (new ones one by one)."""
    if not contacts:
        return set(), False
    with job.db.session() as session:
        known = known_contacts(session, job.store.id, list(contacts))
    payloads = [payload_dict(payload) for payload, _ in contacts.values()]
    try:
        for start in range(0, len(payloads), job.batch_size):
            job.sm.batch_upsert(payloads[start : start + job.batch_size])
    except RemoteCallError as exc:
        if exc.outcome is not Outcome.INVALID:
            raise  # nothing claimed yet: the batch is planned again after the backoff
        return set(), False
    return set(contacts), any(email not in known for email in contacts)


def upsert_buyers(
    job: Job, contacts: BatchContacts, ahead: set[str], result: BatchResult, batch_no: int
) -> tuple[dict[str, str], set[str]]:
    """Make sure every buyer of a batch exists before its events: (contact ids learnt, buyers refused).

    Buyers sent `ahead` are left alone. A buyer the contact ledger knows gets its data brought up to
    date by `batchupsertv2`; one it does not know that did not go ahead is upserted on its own with
    `/api/contact/upsert` (a few at once), which answers once the contact exists."""
    left = [email for email in contacts if email not in ahead]
    if not left:  # the usual case: every buyer went ahead
        return {}, set()
    with job.db.session() as session:
        known = known_contacts(session, job.store.id, left)
    contact_ids: dict[str, str] = {}
    refused: set[str] = set()
    new = [
        (email, payload_dict(payload))
        for email, (payload, _) in contacts.items()
        if email not in known and email not in ahead
    ]
    answers = upserts_at_once(job, [payload for _, payload in new])
    for answer in answers:  # the first error, in the buyers' order, is raised
        if isinstance(answer, BaseException):
            raise answer
    for (email, _), (contact_id, message) in zip(new, answers, strict=True):  # type: ignore[misc]
        if contact_id is None:
            refused.add(email)
            result.messages.append(f"Batch {batch_no}: SALESmanago refused a buyer: {message}"[:500])
        else:
            contact_ids[email] = contact_id
    updates = [payload_dict(payload) for email, (payload, _) in contacts.items() if email in known]
    for start in range(0, len(updates), job.batch_size):
        try:
            job.sm.batch_upsert(updates[start : start + job.batch_size])
        except RemoteCallError as exc:
            if exc.outcome is not Outcome.INVALID:
                raise
            # They exist already: their events still go; only this update of their data is lost.
            result.messages.append(
                f"Batch {batch_no}: SALESmanago refused the buyers' data: {exc.message}"[:500]
            )
    return contact_ids, refused


def upserts_at_once(job: Job, payloads: list[dict[str, Any]]) -> list[tuple[str | None, str] | BaseException]:
    """Each buyer's synchronous upsert, a few at once (each waits for SALESmanago to create the
    contact): (contact id, or None and SALESmanago's refusal), or the error it raised."""
    if not payloads:
        return []
    assert job.upserts is not None  # events.event_batches' pool
    answers: list[tuple[str | None, str] | BaseException | None] = [None] * len(payloads)
    queue = iter(enumerate(payloads))
    taking = threading.Lock()

    def work() -> None:  # one task per thread taking buyers in turn, not one task per buyer
        while True:
            with taking:
                taken = next(queue, None)
            if taken is None:
                return
            index, payload = taken
            try:
                answers[index] = upsert_or_refusal(job, payload)
            except BaseException as exc:  # kept for its turn below, as a future would keep it
                answers[index] = exc

    workers = [job.upserts.submit(work) for _ in range(min(UPSERTS_AT_ONCE, len(payloads)))]
    wait(workers)
    for worker in workers:
        worker.result()
    return [answer for answer in answers if answer is not None]  # every one, answered


def upsert_or_refusal(job: Job, payload: dict[str, Any]) -> tuple[str | None, str]:
    """One synchronous upsert: (its contact id, "") or (None, SALESmanago's refusal)."""
    try:
        return job.sm.upsert_contact(payload), ""
    except RemoteCallError as exc:
        if exc.outcome is not Outcome.INVALID:
            raise
        return None, exc.message
