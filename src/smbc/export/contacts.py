"""The contacts export: customers created in the range (`/v3/customers`, cursor pagination) as
contacts, with their newsletter state from the subscribers, upserted with `batchupsertv2` in batches.
Upserting is idempotent: exporting again updates them. `batchupsertv2` is asynchronous (a request
id, no contact ids): the ledger records the contacts as sent, without ids."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from smbc.bigcommerce.client import PAGE_LIMIT, V3Pages
from smbc.consent.history import ConsentChangeMade, ConsentSource, record_consent_changes
from smbc.consent.plan import (
    BATCH_UPSERT_PATH,
    last_known_opt_ins,
    plan_consent_batch,
    subscriber_consented,
)
from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.engine.read_ahead import ReadAhead
from smbc.export.job import BatchResult, Job, commit_batch, in_range, locked_row, reason_category
from smbc.export.ledger import ContactSent, remember_contacts
from smbc.export.models import Export, ExportSubscriber
from smbc.mapping import records as mapping
from smbc.mapping import rules

SUBSCRIBERS_PATH = "/v3/customers/subscribers"
# Where a customer stands in the stream: (the `after` that reads its page again, the page number
# when BigCommerce offers no cursor, its index in the page).
Position = tuple[str | None, int, int]


def _bc_time(value: datetime) -> str:
    """`2024-05-14T09:34:00` in UTC: the v3 date form BigCommerce documents for date filters."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _range_filter(job: Job) -> dict[str, Any]:
    return {"date_created:min": _bc_time(job.from_utc), "date_created:max": _bc_time(job.to_utc)}


def _subscribers_prefetch(job: Job) -> None:
    """Read every subscriber page into `export_subscribers` (one page a transaction, resumable)."""
    for data, next_position, last in ReadAhead(_subscriber_pages(job)):
        states: dict[str, bool] = {}
        for item in data:
            email = rules.normalize_email(item.get("email"))
            if email:  # one e-mail on several channels: subscribed on any counts
                states[email] = states.get(email, False) or subscriber_consented(item)
        job.cursor.update(next_position)
        if last:
            job.cursor["subscribers"] = "loaded"

        def store_states(session: Session, states: dict[str, bool] = states) -> None:
            if not states:
                return
            existing = {
                email: opted_in
                for email, opted_in in session.execute(
                    select(ExportSubscriber.email, ExportSubscriber.opted_in).where(
                        ExportSubscriber.export_id == job.export_id,
                        ExportSubscriber.email.in_(list(states)),
                    )
                )
            }
            new = [
                {"export_id": job.export_id, "email": email, "opted_in": opted_in}
                for email, opted_in in states.items()
                if email not in existing
            ]
            now_subscribed = [  # seen on an earlier page without consent, with it on this one
                {"export_id": job.export_id, "email": email, "opted_in": True}
                for email, opted_in in states.items()
                if opted_in and email in existing and not existing[email]
            ]
            if new:
                session.execute(insert(ExportSubscriber.__table__), new)
            if now_subscribed:
                session.execute(update(ExportSubscriber), now_subscribed)

        commit_batch(job, BatchResult(), extra=store_states)


def _subscriber_pages(job: Job) -> Iterator[tuple[list[dict[str, Any]], dict[str, Any], bool]]:
    """(subscribers, where the page after them starts, is it the last page), from the saved position.

    Each page is handed on once the next one is read, so its position is known and saved with it."""
    pages = V3Pages(
        job.bc,
        SUBSCRIBERS_PATH,
        limit=PAGE_LIMIT,
        cursor=job.cursor.get("subscriber_after"),
        page=int(job.cursor.get("subscriber_page") or 1),
    )
    held: list[dict[str, Any]] | None = None
    for data in pages:  # while a page is taken, `pages` holds the position that reads it again
        if held is not None:
            yield held, {"subscriber_page": pages.page, "subscriber_after": pages.cursor}, False
        held = data
    yield held or [], {}, True


def _newsletter_states(job: Job, emails: list[str]) -> dict[str, bool]:
    """E-mail -> subscribed (True) or a subscriber record without consent (False); absent: none."""
    if job.cursor.get("subscribers") == "loaded":
        with job.db.session() as session:
            rows = session.execute(
                select(ExportSubscriber.email, ExportSubscriber.opted_in).where(
                    ExportSubscriber.export_id == job.export_id, ExportSubscriber.email.in_(emails)
                )
            ).all()
        return {email: bool(opted_in) for email, opted_in in rows}
    states: dict[str, bool] = {}
    for email in emails:  # few customers in the range: one `email` lookup each is cheaper
        for item in job.bc.subscribers(email=email).items():
            states[email] = states.get(email, False) or subscriber_consented(item)
    return states


def _plan_subscriber_reads(job: Job) -> None:
    """Choose how to learn newsletter states: read every subscriber page once (a store's subscribers
    in few pages), or look each exported e-mail up (a small range in a big store)."""
    if "subscribers" in job.cursor:
        return
    customers_total = _count_customers(job)
    subscribers_total = job.bc.subscriber_count()
    if subscribers_total is None:  # the answer does not say: reading every page is always right
        job.cursor["subscribers"] = "pages"
        return
    pages = math.ceil(subscribers_total / PAGE_LIMIT)
    if pages == 0:
        job.cursor["subscribers"] = "loaded"  # no subscriber at all: nobody is opted in or out
    elif pages <= (customers_total or 0):
        job.cursor["subscribers"] = "pages"
    else:
        job.cursor["subscribers"] = "lookup"


def _count_customers(job: Job) -> int | None:
    total = job.bc.customer_count(**_range_filter(job))
    if total is None:
        return None
    with job.db.session() as session:
        locked_row(session, job).total = total
    return total


def _customer_stream(job: Job) -> Iterator[tuple[dict[str, Any], Position]]:
    """(customer, its position), from the saved position on."""
    skip = int(job.cursor.get("skip") or 0)
    for customers, after, page in ReadAhead(_customer_pages(job)):
        for index, customer in enumerate(customers):
            if index >= skip:
                yield customer, (after, page, index)
        skip = 0


def _customer_pages(job: Job) -> Iterator[tuple[list[dict[str, Any]], str | None, int]]:
    """(customers, the `after` and page number that read this page again), from the saved page on."""
    pages = V3Pages(
        job.bc,
        "/v3/customers",
        {**_range_filter(job), "include": "addresses"},
        limit=job.page_size,
        cursor=job.cursor.get("after"),
        page=int(job.cursor.get("page") or 1),
    )
    for customers in pages:  # V3Pages moves its cursor on only after this page is taken
        yield customers, pages.cursor, pages.page


def contact_batches(job: Job) -> Iterator[Export]:
    _plan_subscriber_reads(job)
    if job.cursor.get("subscribers") == "pages":
        _subscribers_prefetch(job)
    stream = _customer_stream(job)
    while True:
        chunk: list[tuple[dict[str, Any], Position]] = []
        for item in stream:
            chunk.append(item)
            if len(chunk) >= job.batch_size:
                break
        if not chunk:
            return
        yield _send_contacts(job, chunk)


def _send_contacts(job: Job, chunk: list[tuple[dict[str, Any], Position]]) -> Export:
    result = BatchResult(done=len(chunk))
    wanted: dict[str, dict[str, Any]] = {}
    for customer, _ in chunk:
        if not in_range(job, customer.get("date_created")):
            result.done -= 1  # BigCommerce's filter let it through: not ours to count
            continue
        email = rules.normalize_email(customer.get("email"))
        problem = rules.email_problem(email, job.settings.ignored_domains)
        if problem:
            result.skipped[reason_category(problem)] += 1
            continue
        wanted[email] = customer  # the same e-mail twice (channels): the later record wins
    emails = list(wanted)
    states = _newsletter_states(job, emails) if emails else {}
    with job.db.session() as session:
        known = last_known_opt_ins(session, job.store.id, emails)
    plans = plan_consent_batch(
        {email: states.get(email) for email in emails},
        known,
        settings=job.settings,
        language=job.lang(),
        double_opt_in=job.double_opt_in,
    )
    upserts: list[dict[str, Any]] = []
    remembered: list[tuple[str, int, bool | None, str]] = []
    changes: list[ConsentChangeMade] = []
    for email, customer in wanted.items():
        customer_contact = mapping.contact_from_customer(
            customer, owner=job.owner, tags=job.tags, lang=job.lang()
        )
        plan = plans[email]
        contact = plan.apply(customer_contact)
        upserts.append(contact.to_payload())
        remembered.append((email, int(customer.get("id") or 0), states.get(email), contact.digest()))
        if plan.change is not None:
            changes.append(ConsentChangeMade(email, plan.change, plan.sent_summary(BATCH_UPSERT_PATH)))
    if upserts:
        try:
            # Asynchronous: accepted now, applied by SALESmanago a little later; no ids come back.
            job.sm.batch_upsert(upserts)
        except RemoteCallError as exc:
            if exc.outcome is not Outcome.INVALID:
                raise
            result.failed["refused by SALESmanago"] += len(upserts)
            result.messages.append(f"Batch {job.batches + 1}: SALESmanago refused it: {exc.message}"[:500])
            upserts = []
        else:
            result.sent += len(upserts)
    _, (last_after, last_page, last_index) = chunk[-1]
    job.batches += 1
    job.cursor["after"] = last_after
    if last_page != 1:  # only when BigCommerce gave page numbers and no cursor
        job.cursor["page"] = last_page
    job.cursor["skip"] = last_index + 1

    def remember(session: Session) -> None:
        if not upserts:
            return
        sent = [
            ContactSent(email, None, customer_id or None, subscribed, digest)
            for email, customer_id, subscribed, digest in remembered
        ]
        remember_contacts(session, job.store.id, sent)
        record_consent_changes(
            session, job.store.id, changes, source=ConsentSource.EXPORT, ref=f"export:{job.export_id}"
        )

    return commit_batch(job, result, extra=remember)
