"""`smbc privacy export --store HASH --email E`: everything the app holds on a person, as JSON;
`smbc privacy forget --store HASH --email E`: erase it (the ledgers keep only a keyed hash)."""

from __future__ import annotations

import typer

from smbc.cli.common import STORE, command_runtime, fail, print_json

privacy_app = typer.Typer(
    help="Personal data of one person (an e-mail) in a store: export or erase", no_args_is_help=True
)


@privacy_app.command("export")
def privacy_export(
    store: str = STORE,
    email: str = typer.Option(..., "--email", help="the person's e-mail address"),
) -> None:
    """Print everything the app holds on the person as JSON.

    Deliveries with their payloads, calls, ledger rows, consent write-backs and cart links."""
    from smbc.privacy.person import export_person

    with command_runtime() as (db, _):
        try:
            print_json(export_person(db, store, email))
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        except LookupError as exc:
            raise fail(str(exc)) from None


@privacy_app.command("forget")
def privacy_forget(
    store: str = STORE,
    email: str = typer.Option(..., "--email", help="the person's e-mail address"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask for confirmation"),
) -> None:
    """Erase the person from the app's database. Cannot be undone.

    Deliveries and their payloads, calls and cart links are deleted; the ledgers keep only what stops
    a second send, under a keyed hash of the e-mail."""
    from smbc.privacy.person import forget_person

    if not yes and not typer.confirm(f"Erase everything about {email.strip()} in store {store}?"):
        raise fail("Nothing was erased.")
    with command_runtime() as (db, _):
        try:
            report = forget_person(db, store, email)
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        except LookupError as exc:
            raise fail(str(exc)) from None
    print_json(report.summary())
