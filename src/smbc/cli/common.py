"""What every command shares: the process settings, one unit of work on an installed store, the actor
name written to change logs, failing with a message and an exit code, and printing listings whole."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from smbc.core.config import ConfigError, Settings, get_settings
from smbc.db.models import Store
from smbc.db.session import Database

# The option of every command on one store.
STORE = typer.Option(..., "--store", help="Store hash")


def cli_settings() -> Settings:
    """The process settings, or exit 2 with the configuration error."""
    try:
        return get_settings()
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli"


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def warn(warnings: Sequence[str]) -> None:
    """What went wrong beside a done command, on stderr: the exit code stays 0."""
    for warning in warnings:
        typer.echo(f"Warning: {warning}", err=True)


def no_installed_store(store_hash: str) -> typer.Exit:
    return fail(f"No installed store with hash {store_hash!r} (see `smbc stores`).")


@contextmanager
def command_runtime() -> Iterator[tuple[Database, Settings]]:
    """The process runtime for one command (the database migrated first on SQLite), closed after."""
    from smbc.core.runtime import close_runtime, init_runtime

    settings = cli_settings()
    runtime = init_runtime(settings, migrate=settings.is_sqlite)
    try:
        yield runtime.db, settings
    finally:
        close_runtime()


@contextmanager
def store_runtime(store_hash: str) -> Iterator[tuple[Database, Settings]]:
    """`command_runtime` for a command on one store: an action that finds the app not installed on
    it ends the command with exit 1 and what to do."""
    from smbc.actions.store_lookup import StoreNotInstalled

    with command_runtime() as runtime:
        try:
            yield runtime
        except StoreNotInstalled:
            raise no_installed_store(store_hash) from None


@contextmanager
def store_session(store_hash: str) -> Iterator[tuple[Session, Store, Settings]]:
    """One unit of work on an installed store."""
    with command_runtime() as (db, settings), db.session() as session:
        store = session.scalar(select(Store).where(Store.hash == store_hash))
        if store is None or not store.installed:
            raise no_installed_store(store_hash)
        yield session, store, settings


_ONE_LINE = str.maketrans("\t\r\n", "   ")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> None:
    """A Rich table on a terminal; piped or captured, one tab-separated line per row (headers first,
    tabs and newlines in values replaced by spaces) so that no value is cut."""
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers, title=title)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    if title:
        typer.echo(f"# {title}")
    for line in (headers, *rows):
        typer.echo("\t".join(value.translate(_ONE_LINE) for value in line))


def print_json(data: object) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))
