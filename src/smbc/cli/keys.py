"""`smbc keys rotate`: every stored secret re-encrypted under the newest SMBC_SECRET_KEY key."""

from __future__ import annotations

import typer

from smbc.cli.common import command_runtime, fail
from smbc.core.encryption import get_box
from smbc.db.key_rotation import BATCH_SIZE, TableRotation, rotate_keys

keys_app = typer.Typer(help="Encryption keys of the secrets at rest", no_args_is_help=True)


@keys_app.command("rotate")
def keys_rotate(
    batch_size: int = typer.Option(BATCH_SIZE, min=1, help="rows per committed batch"),
) -> None:
    """Re-encrypt every stored secret with the newest SMBC_SECRET_KEY key (the first one), so older
    keys can be removed afterwards. Safe to interrupt and run again."""
    with command_runtime() as (db, _settings):
        tables = rotate_keys(db, get_box(), batch_size=batch_size, after_batch=_progress)
    for table in tables:
        line = f"{table.table}: {table.rotated} re-encrypted, {table.current} already under the newest key"
        typer.echo(line + (f", {table.unreadable} UNREADABLE" if table.unreadable else ""))
    if any(t.unreadable for t in tables):
        raise fail(
            "Some values could not be decrypted with any configured key: keep the older keys in "
            "SMBC_SECRET_KEY until they are found."
        )
    typer.echo("Done: every secret is under the newest key; older keys may be removed from SMBC_SECRET_KEY.")


def _progress(table: TableRotation) -> None:
    typer.echo(f"  {table.table}: {table.rotated + table.current + table.unreadable} values so far", err=True)
