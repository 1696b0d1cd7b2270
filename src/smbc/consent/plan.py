"""The one consent plan: every send to SALESmanago that can change a contact's newsletter consent
works it out here, from the BigCommerce newsletter state and the contact ledger's last known consent.

- Nobody is opted in by accident: only an explicit subscription opts in (`forceOptIn` + the
  newsletter tags), only a known opt-in that is withdrawn opts out (`forceOptOut`); anything else
  sends all flags false and SALESmanago's status stays as it is.
- Double opt-in (setting `double_opt_in_enabled`, in either of SALESmanago's two styles, see
  `double_opt_in_for`): a contact subscribing now is sent with `useApiDoubleOptIn` unless
  SALESmanago already has it opted in (`/api/contact/basic`), and one subscription asks for one
  confirmation e-mail whatever the number of deliveries (claims in `consent.double_opt_in`).
- Opt-in consent synchronization (setting `opt_in_sync`): a new registration whose e-mail is already
  opted in in SALESmanago keeps its opt-in (`forceOptIn`), and a write-back marks the BigCommerce
  subscriber opted in.

For the export: `plan_consent_batch(subscribed, last_known, settings=..., language=...,
double_opt_in=...)` plans a whole batch without any network call (`last_known_opt_ins` reads the
ledger for it); apply each plan to its contact with `ConsentPlan.apply`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from smbc.consent.double_opt_in import (
    claim_double_opt_in,
    close_subscription_round,
    mark_double_opt_in_sent,
    release_double_opt_in,
)
from smbc.consent.history import ConsentChangeKind, ConsentSource, record_consent_change
from smbc.consent.service import OPT_IN, SOURCE_OPT_IN_SYNC
from smbc.consent.write_back import enqueue_write_back, record_write_back
from smbc.db.driver_statements import rows_by_keys
from smbc.db.session import StatementRunner
from smbc.engine.context import Context
from smbc.engine.ledgers import SyncedContact, ledger_keys, remember_contact
from smbc.mapping import records as mapping
from smbc.mapping import rules
from smbc.mapping.rules import NEWSLETTER, NO_CONSENT_CHANGE, ConsentFlags
from smbc.settings.store_settings import StoreSettings

T = TypeVar("T")
# The SALESmanago calls that carry a contact's consent, as the consent history names them.
UPSERT_PATH = "/api/contact/upsert"
INTEGRATION_UPSERT_PATH = "/api/integration/upsert"
BATCH_UPSERT_PATH = "/api/contact/batchupsertv2"


def subscriber_consented(subscriber: Mapping[str, Any]) -> bool:
    """Opted in to the newsletter: `marketing_newsletter` among the subscriber's consents."""
    return NEWSLETTER in (subscriber.get("consents") or [])


def opted_in_in_salesmanago(contact: Mapping[str, Any] | None) -> bool:
    """`/api/contact/basic` shows the contact, explicitly not opted out (missing flag: not sure, no)."""
    return contact is not None and contact.get("optedOut") is False


def double_opt_in_for(settings: StoreSettings, language: str | None) -> mapping.DoubleOptIn | None:
    """The double opt-in attributes when double opt-in is on. With a confirmation e-mail id set,
    SALESmanago's current style: that e-mail, in the language set (else the store's). Otherwise the
    older style: the template, account and subject when all three are set, else none of them
    (SALESmanago then sends its default confirmation e-mail)."""
    if not settings.double_opt_in_enabled:
        return None
    email_id = settings.double_opt_in_email_id.strip()
    if email_id:
        return mapping.DoubleOptIn(
            email_id=email_id, language=settings.double_opt_in_language.strip() or language
        )
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

    @property
    def change(self) -> ConsentChangeKind | None:
        """The consent change this send makes (None: it changes nothing)."""
        if self.flags.force_opt_in:
            return (
                ConsentChangeKind.DOUBLE_OPT_IN_REQUESTED
                if self.double_opt_in
                else ConsentChangeKind.OPTED_IN
            )
        if self.flags.force_opt_out:
            return ConsentChangeKind.OPTED_OUT
        return None

    def sent_summary(self, endpoint: str) -> str:
        """What the send tells SALESmanago about consent, for the consent history (no e-mail, no secret)."""
        if self.flags.force_opt_out:
            parts = ["forceOptOut"]
        else:
            parts = ["forceOptIn"] + ([f"tags {', '.join(self.tags)}"] if self.tags else [])
            if self.double_opt_in is not None:
                confirmation = self.double_opt_in.email_id or self.double_opt_in.template_id
                parts.append(
                    "useApiDoubleOptIn" + (f" (confirmation e-mail {confirmation})" if confirmation else "")
                )
        return f"{endpoint}: {', '.join(parts)}" + (f"; {self.note}" if self.note else "")

    def apply(self, contact: mapping.ContactUpsert) -> mapping.ContactUpsert:
        double_opt_in = self.double_opt_in if self.flags.force_opt_in else None
        if not self.tags and contact.consent == self.flags and contact.double_opt_in == double_opt_in:
            return contact  # nothing to change (most contacts): frozen, so the same one will do
        return replace(
            contact,
            consent=self.flags,
            tags=(*contact.tags, *self.tags),
            double_opt_in=double_opt_in,
        )


# Built once (Core, on the table): SQLAlchemy computes a statement's cache key once per object.
_CONTACTS = SyncedContact.__table__
_LAST_KNOWN_OPT_IN = select(_CONTACTS.c.opted_in).where(
    _CONTACTS.c.store_id == bindparam("ledger_store"),
    _CONTACTS.c.email.in_(bindparam("ledger_keys", expanding=True)),
)


def last_known_opt_in(session: StatementRunner, store_id: int, email: str) -> bool | None:
    """The newsletter consent last sent to (or received from) SALESmanago for the e-mail (a
    forgotten person's too: their row is kept under a keyed hash of the e-mail)."""
    keys = list(dict.fromkeys([email, *ledger_keys(email)]))
    return session.execute(_LAST_KNOWN_OPT_IN, {"ledger_store": store_id, "ledger_keys": keys}).scalar()


def last_known_opt_ins(session: Session, store_id: int, emails: Iterable[str]) -> dict[str, bool | None]:
    """`last_known_opt_in` for many e-mails in one query (e-mails the ledger does not know: absent)."""
    wanted = {key: email for email in emails for key in (email, *ledger_keys(email))}
    if not wanted:
        return {}
    rows = rows_by_keys(
        session,
        "SELECT email, opted_in FROM synced_contacts WHERE store_id = ? AND email {keys}",
        store_id,
        list(wanted),
    )
    if rows is None:
        rows = session.execute(
            select(SyncedContact.email, SyncedContact.opted_in).where(
                SyncedContact.store_id == store_id, SyncedContact.email.in_(list(wanted))
            )
        ).all()
    return {wanted[key]: None if opted_in is None else bool(opted_in) for key, opted_in in rows}


def consent_plan_for(
    subscribed: bool | None,
    last_known: bool | None,
    *,
    settings: StoreSettings,
    language: str | None,
    double_opt_in: bool,
) -> ConsentPlan:
    """The plan from the two states alone (no database, no network): `subscribed` is the
    BigCommerce newsletter state (True: subscribes now, False: withdrew, None: says nothing),
    `last_known` the ledger's consent. With `double_opt_in` (and the setting on) an opt-in carries
    the confirmation e-mail's attributes."""
    flags = rules.consent_flags(subscribed, last_known)
    if not flags.force_opt_in:
        return ConsentPlan(flags=flags)
    attributes = double_opt_in_for(settings, language) if double_opt_in else None
    return ConsentPlan(flags=flags, tags=tuple(settings.tags_newsletter), double_opt_in=attributes)


def plan_consent_batch(
    subscribed: Mapping[str, bool | None],
    last_known: Mapping[str, bool | None],
    *,
    settings: StoreSettings,
    language: str | None,
    double_opt_in: bool,
) -> dict[str, ConsentPlan]:
    """Plans for a batch of e-mails (the export's): `subscribed` maps each e-mail to its BigCommerce
    newsletter state, `last_known` to the ledger's consent (missing: unknown). Nothing is asked of
    SALESmanago and no confirmation claim is taken, so with `double_opt_in=True` every contact
    opted in by the batch is asked to confirm; `double_opt_in=False` opts them in directly."""
    return {
        email: consent_plan_for(
            state,
            last_known.get(email),
            settings=settings,
            language=language,
            double_opt_in=double_opt_in,
        )
        for email, state in subscribed.items()
    }


def salesmanago_contact(ctx: Context, email: str) -> dict[str, Any] | None:
    contacts = ctx.sm.contact_basic([email])
    return next((c for c in contacts if rules.normalize_email(c.get("email")) == email), None)


def plan_consent(ctx: Context, email: str, subscribed: bool | None, *, owner: str) -> ConsentPlan:
    """The consent part of one contact send (real time), for `subscribed` (True: subscribes now,
    False: withdrew, None: says nothing). May ask SALESmanago whether the contact is opted in already
    and claim the confirmation e-mail; `owner` names the work ("delivery:42") holding that claim."""
    with ctx.db.connection() as connection:
        last = last_known_opt_in(connection, ctx.store.id, email)
    plan = consent_plan_for(
        subscribed,
        last,
        settings=ctx.settings,
        language=rules.store_language(ctx.store.info),
        double_opt_in=True,
    )
    if plan.double_opt_in is None:
        return plan
    if opted_in_in_salesmanago(salesmanago_contact(ctx, email)):
        return replace(plan, double_opt_in=None, note="already opted in in SALESmanago: no confirmation")
    busy = claim_double_opt_in(ctx.db, ctx.store.id, email, owner=owner, now=ctx.now)
    if busy:
        return ConsentPlan(note=busy)  # never a plain opt-in while double opt-in is on
    return replace(plan, claim_owner=owner)


def plan_registration(ctx: Context, customer: Mapping[str, Any], *, registering: bool) -> ConsentPlan:
    """Opt-in consent synchronization for a new registration: an e-mail SALESmanago has opted in
    keeps its opt-in (and BigCommerce is told); no consent change otherwise."""
    if not (registering and ctx.settings.opt_in_sync):
        return ConsentPlan()
    email = rules.normalize_email(customer.get("email"))
    if not opted_in_in_salesmanago(salesmanago_contact(ctx, email)):
        return ConsentPlan(note="not opted in in SALESmanago")
    with ctx.db.connection() as connection:
        last = last_known_opt_in(connection, ctx.store.id, email)
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
    ctx: Context,
    contact: mapping.ContactUpsert,
    plan: ConsentPlan,
    send: Callable[[dict[str, Any]], T],
    *,
    work: str,
    endpoint: str,
) -> T:
    """Send `contact` with the plan's consent to `endpoint`; then, in one transaction, settle the
    claim, close the subscription round on an opt-out, queue the opt-in synchronization's write-back
    and, for a consent change, write it to the contact ledger and the consent history (`work` names
    the delivery it came from, "delivery:42"). The caller records the rest of the contact after."""
    email = contact.email
    try:
        answer = send(plan.apply(contact).to_payload())
    except BaseException:
        if plan.claim_owner:
            release_double_opt_in(ctx.db, ctx.store.id, email, plan.claim_owner)
        raise
    if not (
        plan.claim_owner or plan.flags.force_opt_out or plan.write_back is not None or plan.change is not None
    ):
        return answer  # nothing about consent to settle: no transaction
    write_back_id: int | None = None
    with ctx.db.session() as session:
        if plan.claim_owner:
            mark_double_opt_in_sent(session, ctx.store.id, email, plan.claim_owner, ctx.now)
        if plan.flags.force_opt_out:
            close_subscription_round(session, ctx.store.id, email)
        sent = plan.sent_summary(endpoint)
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
            sent += f"; BigCommerce subscriber to be opted in (write-back consent:{write_back_id})"
        if plan.change is not None:
            current = contact.new_email or email  # an e-mail change: the consent is the new address's
            remember_contact(session, ctx.store.id, current, opted_in=plan.opted_in)
            record_consent_change(
                session,
                ctx.store.id,
                current,
                source=ConsentSource.BIGCOMMERCE,
                change=plan.change,
                sent=sent,
                ref=work,
            )
    if write_back_id is not None:
        enqueue_write_back(write_back_id)
    return answer
