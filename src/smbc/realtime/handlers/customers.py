"""Customers (created, updated, address created/updated/deleted, deleted) -> SALESmanago contacts."""

from __future__ import annotations

from smbc.consent.plan import UPSERT_PATH, plan_registration, send_planned
from smbc.engine.context import Context, Result
from smbc.engine.ledgers import contact_by, known_contact, remember_contact
from smbc.mapping import records as mapping
from smbc.mapping import rules
from smbc.realtime.handlers import Delivery, current_resource


def handle_customer(ctx: Context, delivery: Delivery) -> Result:
    customer_id, customer = current_resource(ctx, "customer", delivery, ctx.bc.customer)
    if customer is None:
        return Result.skipped("customer no longer exists in BigCommerce")
    email = rules.normalize_email(customer.get("email"))
    problem = rules.email_problem(email, ctx.settings.ignored_domains)
    if problem:
        return Result.skipped(problem)
    with ctx.db.connection() as connection:
        known = known_contact(connection, ctx.store.id, customer_id=customer_id, email=email)
        known_email = known.email if known is not None and known.customer_id == customer_id else None
        known_hash = known.payload_hash if known is not None else ""
    registering = delivery.scope == "store/customer/created"
    contact = mapping.contact_from_customer(
        customer,
        owner=ctx.owner,
        tags=ctx.settings.tags_registration if registering else (),
        lang=rules.store_language(ctx.store.info),
        previous_email=known_email,
    )
    digest = contact.digest()
    if known_hash == digest and (not registering or delivery.source == "reconcile"):
        return Result.done("contact unchanged")  # (a reconciled registration already sent too)
    plan = plan_registration(ctx, customer, registering=registering)  # opt-in synchronization
    contact_id = send_planned(
        ctx, contact, plan, ctx.sm.upsert_contact, work=f"delivery:{delivery.id}", endpoint=UPSERT_PATH
    )
    with ctx.db.connection() as connection:
        remember_contact(
            connection,
            ctx.store.id,
            email,
            contact_id=contact_id,
            customer_id=customer_id,
            previous_email=known_email,
            opted_in=plan.opted_in,
            payload_hash=digest,
        )
    if contact.new_email:
        return Result.done(f"e-mail changed from {contact.email}")
    return Result.done("registered" if registering else "contact updated")


def handle_customer_deleted(ctx: Context, delivery: Delivery) -> Result:
    """Acted on only once BigCommerce confirms the customer is gone: a deletion can be forged or
    arrive out of order, and deleting a contact in SALESmanago cannot be undone."""
    customer_id, customer = current_resource(ctx, "customer", delivery, ctx.bc.customer)
    if customer is not None:
        return Result.skipped("customer still exists in BigCommerce: deletion not confirmed, nothing changed")
    with ctx.db.session() as session:
        known = contact_by(session, ctx.store.id, customer_id=customer_id)
        email = known.email if known is not None else None
        if known is not None:
            known.deleted = True
    if email is None:
        return Result.done("customer deleted; no contact was sent for it")
    if not ctx.settings.delete_contact_on_customer_delete:
        return Result.done("customer deleted; contact kept (setting off)")
    ctx.sm.delete_contact(email)
    return Result.done("customer deleted; contact deleted in SALESmanago")
