"""`smbc activity --store HASH [--failed] [--json] [--order N | --customer N | --email E | --cart ID]`:
a store's recent deliveries and calls, or everything about one entity in time order, with the
reason for each decision (the Activity tab shows the same)."""

from __future__ import annotations

from dataclasses import asdict

import typer

from smbc.cli.common import STORE, command_runtime, fail, print_json, print_table


def activity_command(
    store: str = STORE,
    failed: bool = typer.Option(False, "--failed", help="only failed or waiting deliveries and failed calls"),
    limit: int = typer.Option(50, "--limit", min=1, max=1000),
    order: str | None = typer.Option(None, "--order", metavar="N", help="everything about order N"),
    customer: str | None = typer.Option(None, "--customer", metavar="N", help="... about customer N"),
    email: str | None = typer.Option(
        None, "--email", metavar="E", help="... about e-mail E, with its consent history"
    ),
    cart: str | None = typer.Option(None, "--cart", metavar="ID", help="... about cart ID"),
    as_json: bool = typer.Option(
        False,
        "--json",
        help='Print JSON: {"deliveries": [...], "calls": [...]}, or for one entity '
        '{"entity", "entries": [...], "consent_history": [...]}',
    ),
) -> None:
    """Recent webhook deliveries and remote calls of a store, or everything about one order, customer,
    e-mail or cart in time order, with the reason for each decision."""
    searches = {
        k: v for k, v in {"order": order, "customer": customer, "email": email, "cart": cart}.items() if v
    }
    if len(searches) > 1:
        raise fail("Give one of --order, --customer, --email, --cart.", 2)
    if searches:
        ((kind, value),) = searches.items()
        _entity(store, kind, value, as_json=as_json)
    else:
        _recent(store, failed=failed, limit=limit, as_json=as_json)


def _entity(store: str, kind: str, value: str, *, as_json: bool) -> None:
    from smbc.activity.timeline import entity_timeline

    with command_runtime() as (db, _):
        try:
            timeline = entity_timeline(db, store, kind, value)
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        except LookupError as exc:
            raise fail(str(exc)) from None
    if as_json:
        print_json(timeline.as_dict())
        return
    print_table(
        ("at", "kind", "what", "status", "reason"),
        [(f"{e.at:%Y-%m-%d %H:%M:%S}", e.kind, e.what, e.status, e.reason) for e in timeline.entries],
        title=f"Everything about {timeline.entity}"
        if timeline.entries
        else f"Nothing about {timeline.entity}",
    )
    if timeline.consent:
        print_table(
            ("at", "source", "change", "sent", "from"),
            [
                (f"{c.at:%Y-%m-%d %H:%M:%S}", c.source_label, c.change_label, c.sent, c.ref)
                for c in timeline.consent
            ],
            title="Consent history",
        )


def _recent(store: str, *, failed: bool, limit: int, as_json: bool) -> None:
    from smbc.activity.recent import recent_activity

    with command_runtime() as (db, _):
        try:
            deliveries, calls = recent_activity(db, store, failed_only=failed, limit=limit)
        except LookupError as exc:
            raise fail(str(exc)) from None
    if as_json:
        print_json({"deliveries": [asdict(d) for d in deliveries], "calls": [asdict(c) for c in calls]})
        return
    print_table(
        ("id", "received", "scope", "resource", "source", "status", "tries", "reason / error"),
        [
            (
                str(d.id),
                f"{d.received_at:%Y-%m-%d %H:%M:%S}",
                d.scope,
                d.resource,
                d.source,
                d.status,
                str(d.attempts),
                d.detail,
            )
            for d in deliveries
        ],
        title="Deliveries",
    )
    print_table(
        ("at", "service", "call", "outcome", "HTTP", "ms", "message"),
        [
            (
                f"{c.created_at:%Y-%m-%d %H:%M:%S}",
                c.service,
                f"{c.method} {c.endpoint}",
                c.outcome,
                "" if c.status is None else str(c.status),
                str(c.duration_ms),
                c.message or "",
            )
            for c in calls
        ],
        title="Calls",
    )
