"""`smbc export contacts|events --store HASH --from YYYY-MM-DD --to YYYY-MM-DD [--tags A,B]`: the same
export job as the dashboard's, run in the foreground with a terminal progress bar.
`smbc export events --store HASH --resend-unconfirmed N` sends export N's unconfirmed events again."""

from __future__ import annotations

import typer
from sqlalchemy import select

from smbc.core.config import ConfigError, get_settings
from smbc.db.models import Store
from smbc.export import service
from smbc.export.models import Export, ExportKind, ExportStatus


def export_command(
    kind: ExportKind = typer.Argument(..., help="contacts (customers) or events (orders)"),
    store: str = typer.Option(..., "--store", help="store hash"),
    date_from: str = typer.Option("", "--from", help="first day, YYYY-MM-DD (store time zone)"),
    date_to: str = typer.Option("", "--to", help="last day, YYYY-MM-DD (included)"),
    tags: str = typer.Option("", "--tags", help="contacts only: comma-separated tags to add"),
    resend_unconfirmed: int | None = typer.Option(
        None,
        "--resend-unconfirmed",
        metavar="EXPORT_ID",
        help="events only: send that export's unconfirmed events again (its range; no --from/--to)",
    ),
) -> None:
    """Export customers as contacts or orders as external events, by creation date."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from smbc.core.runtime import init_runtime

    try:
        settings = get_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    runtime = init_runtime(settings, migrate=settings.is_sqlite)
    with runtime.db.session() as session:
        row = session.scalar(select(Store).where(Store.hash == store))
        if row is None or not row.installed:
            typer.echo(f"no installed store with hash {store!r}", err=True)
            raise typer.Exit(1)
        session.expunge(row)
    if kind is ExportKind.EVENTS and tags.strip():
        typer.echo("--tags applies to contacts exports only", err=True)
        raise typer.Exit(2)
    if resend_unconfirmed is not None and (kind is not ExportKind.EVENTS or date_from or date_to):
        typer.echo(
            "--resend-unconfirmed goes with `events` and no --from/--to (it reuses the range)", err=True
        )
        raise typer.Exit(2)
    try:
        if resend_unconfirmed is not None:
            export_id = service.resend_unconfirmed(
                runtime.db, row.id, resend_unconfirmed, actor="cli", enqueue=False
            )
        else:
            first, last, tag_list = service.parse_request(
                date_from, date_to, tags, today=service.store_today(row)
            )
            export_id = service.start_export(
                runtime.db, row.id, kind, first, last, tags=tag_list, actor="cli", enqueue=False
            )
        queued = service.export_row(runtime.db, export_id)
        first, last = queued.date_from, queued.date_to
    except service.ExportInvalid as exc:
        for field, message in exc.errors.items():
            typer.echo(f"{field.replace('date_', '--')}: {message}" if field != "form" else message, err=True)
        raise typer.Exit(2) from None
    except service.ExportAlreadyRunning as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None

    typer.echo(f"{kind.value.capitalize()} export #{export_id}: {first} to {last} ({row.timezone or 'UTC'})")
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

            def on_wait(seconds: float, error: str) -> None:
                bar.console.print(f"waiting {seconds:.0f} s to retry: {error}")

            final = service.run_in_foreground(runtime.db, export_id, on_batch=on_batch, on_wait=on_wait)
    except KeyboardInterrupt:
        typer.echo(
            f"\nInterrupted. Export #{export_id} resumes from its last batch with `smbc worker`, "
            "or cancel it on the Export Data tab.",
            err=True,
        )
        raise typer.Exit(130) from None
    typer.echo(f"{final.status}: {final.done} done, {final.sent} sent")
    for title, counts in (("skipped", final.skipped), ("failed", final.failed)):
        for reason, count in (counts or {}).items():
            typer.echo(f"  {title}: {reason}: {count}")
    for message in final.messages or []:
        typer.echo(f"  {message}")
    if final.status != ExportStatus.DONE.value:
        raise typer.Exit(1)
