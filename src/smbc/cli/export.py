"""`smbc export contacts|events|cancel|resend`: the Export Data tab's actions (`smbc.actions.export`)
from the command line. An export started here runs in the foreground with a terminal progress bar and
says each wait before a retry, with its reason."""

from __future__ import annotations

from collections.abc import Callable

import typer

from smbc.cli.common import STORE, actor, fail, store_runtime
from smbc.db.session import Database
from smbc.export.models import Export, ExportKind, ExportStatus

export_app = typer.Typer(
    help="Archival export of customers (contacts) or orders (events), by creation date",
    no_args_is_help=True,
)

EXPORT_ID = typer.Argument(..., metavar="EXPORT_ID", help="the export's number (#N on the Export Data tab)")


@export_app.command("contacts")
def export_contacts(
    store: str = STORE,
    date_from: str = typer.Option("", "--from", help="first day, YYYY-MM-DD (store time zone)"),
    date_to: str = typer.Option("", "--to", help="last day, YYYY-MM-DD (included)"),
    tags: str = typer.Option("", "--tags", help="comma-separated tags to add to every contact"),
) -> None:
    """Export customers created in the range as SALESmanago contacts."""
    _start(ExportKind.CONTACTS, store, date_from, date_to, tags)


@export_app.command("events")
def export_events(
    store: str = STORE,
    date_from: str = typer.Option("", "--from", help="first day, YYYY-MM-DD (store time zone)"),
    date_to: str = typer.Option("", "--to", help="last day, YYYY-MM-DD (included)"),
    tags: str = typer.Option("", "--tags", hidden=True),  # refused with a clear message below
    resend_unconfirmed: int | None = typer.Option(
        None,
        "--resend-unconfirmed",
        metavar="EXPORT_ID",
        help="send that export's unconfirmed events again (its range; no --from/--to), as `resend`",
    ),
) -> None:
    """Export orders created in the range as SALESmanago external events."""
    if resend_unconfirmed is not None:
        if date_from or date_to or tags:
            raise fail("--resend-unconfirmed goes with no --from/--to (it reuses the range)", 2)
        _resend(store, resend_unconfirmed)
        return
    _start(ExportKind.EVENTS, store, date_from, date_to, tags)


@export_app.command("resend")
def export_resend(store: str = STORE, export_id: int = EXPORT_ID) -> None:
    """Send an events export's unconfirmed events again (once SALESmanago is known to lack them)."""
    _resend(store, export_id)


@export_app.command("cancel")
def export_cancel(store: str = STORE, export_id: int = EXPORT_ID) -> None:
    """Stop a running export after the batch in hand."""
    from smbc.actions import export as export_actions

    with store_runtime(store) as (db, _settings):
        cancelled = export_actions.cancel_export(db, store, export_id)
    if not cancelled:
        raise fail(f"Export #{export_id} is not running.")
    typer.echo(f"Export #{export_id} is stopping after the batch in hand.")


def _start(kind: ExportKind, store: str, date_from: str, date_to: str, tags: str) -> None:
    from smbc.actions import export as export_actions

    def start(db: Database) -> Export:
        started = export_actions.start_export(
            db, store, kind, date_from=date_from, date_to=date_to, tags=tags, actor=actor(), enqueue=False
        )
        return started.export

    _run(store, start)


def _resend(store: str, export_id: int) -> None:
    from smbc.actions import export as export_actions

    def start(db: Database) -> Export:
        return export_actions.resend_unconfirmed(db, store, export_id, actor=actor(), enqueue=False).export

    _run(store, start)


def _run(store: str, start: Callable[[Database], Export]) -> None:
    """Record the export with `start`, then run it here until it ends."""
    from smbc.export import service

    with store_runtime(store) as (db, _settings):
        try:
            queued: Export = start(db)
        except service.ExportInvalid as exc:
            for field, message in exc.errors.items():
                typer.echo(
                    message if field == "form" else f"--{field.removeprefix('date_')}: {message}", err=True
                )
            raise typer.Exit(2) from None
        except service.ExportAlreadyRunning as exc:
            raise fail(str(exc)) from None
        final = _follow(db, queued)
    _summary(final)


def _follow(db: Database, queued: Export) -> Export:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from smbc.export import service

    kind = ExportKind(queued.kind)
    label = f"{kind.value.capitalize()} export #{queued.id}"
    typer.echo(f"{label}: {queued.date_from} to {queued.date_to} ({queued.timezone})")
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[sent]} sent"),
    )
    try:
        with Progress(*columns) as bar:
            task = bar.add_task(kind.value, total=None, sent=0)

            def on_batch(current: Export) -> None:
                bar.update(task, completed=current.done, total=current.total, sent=current.sent)

            def on_wait(current: Export, seconds: float) -> None:
                bar.console.print(_wait_line(current, seconds), markup=False, highlight=False, soft_wrap=True)

            return service.run_in_foreground(db, queued.id, on_batch=on_batch, on_wait=on_wait)
    except KeyboardInterrupt:
        typer.echo(
            f"\nInterrupted. Export #{queued.id} resumes from its last batch with `smbc worker`, "
            f"or stop it with `smbc export cancel --store ... {queued.id}`.",
            err=True,
        )
        raise typer.Exit(130) from None


def _wait_line(current: Export, seconds: float) -> str:
    """Which attempt failed, why, and how long until the next one."""
    return f"attempt {current.attempts} failed: {current.last_error}; retrying in {seconds:.0f} s"


def _summary(final: Export) -> None:
    typer.echo(f"{final.status}: {final.done} done, {final.sent} sent")
    for title, counts in (("skipped", final.skipped), ("failed", final.failed)):
        for reason, count in (counts or {}).items():
            typer.echo(f"  {title}: {reason}: {count}")
    for message in final.messages or []:
        typer.echo(f"  {message}")
    if final.status != ExportStatus.DONE.value:
        raise typer.Exit(1)
