"""Newsletter subscribers (created, updated, deleted) -> SALESmanago consent, through the consent plan."""

from __future__ import annotations

from sqlalchemy import select

from smbc.consent.models import KnownSubscriber
from smbc.consent.plan import UPSERT_PATH, plan_consent, send_planned, subscriber_consented
from smbc.consent.subscriber_index import _index_insert
from smbc.engine.context import Context, Result
from smbc.engine.ledgers import remember_contact
from smbc.mapping import records as mapping
from smbc.mapping import rules
from smbc.realtime.handlers import Delivery, current_resource


def handle_subscriber(ctx: Context, delivery: Delivery) -> Result:
    subscriber_id, subscriber = current_resource(ctx, "subscriber", delivery, ctx.bc.subscriber)
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
        lang=rules.store_language(ctx.store.info),
    )
    contact_id = send_planned(
        ctx, contact, plan, ctx.sm.upsert_contact, work=f"delivery:{delivery.id}", endpoint=UPSERT_PATH
    )
    with ctx.db.connection() as connection:
        remember_contact(connection, ctx.store.id, email, contact_id=contact_id, opted_in=plan.opted_in)
    if plan.flags.force_opt_out:
        return Result.done("opted out")
    return Result.done("opted in, confirmation e-mail requested" if plan.double_opt_in else "opted in")


def handle_subscriber_deleted(ctx: Context, delivery: Delivery) -> Result:
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
        ctx,
        mapping.ContactUpsert(email=email, owner=ctx.owner),
        plan,
        ctx.sm.upsert_contact,
        work=f"delivery:{delivery.id}",
        endpoint=UPSERT_PATH,
    )
    with ctx.db.connection() as connection:
        remember_contact(connection, ctx.store.id, email, contact_id=contact_id, opted_in=False)
    forget()
    return Result.done("subscriber deleted: opted out")
