"""`smbc deliveries retry` and `resend`: the Activity tab's Retry and Send again from the command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from smbc.cli.common import STORE, fail, store_runtime

if TYPE_CHECKING:
    from smbc.db.session import Database

deliveries_app = typer.Typer(
    help="Webhook deliveries of a store (list them with `smbc activity`)", no_args_is_help=True
)


def _run(
    store: str,
    delivery_id: int,
    action: Callable[[Database, str, int], Any],
    message: Callable[[int, Any], str],
) -> None:
    """One delivery action, as the Activity tab runs it: a falsy result changed nothing (exit 2)."""
    from smbc.actions.deliveries import DeliveryNotFound

    with store_runtime(store) as (db, _settings):
        try:
            result = action(db, store, delivery_id)
        except DeliveryNotFound as exc:
            raise fail(str(exc)) from None
    if not result:
        raise fail(message(delivery_id, result))
    typer.echo(message(delivery_id, result))


def _delivery_command(name: str, summary: str, action: str, message: str) -> None:
    """Register `smbc deliveries NAME`, which runs `action` and reports with `message` (both named
    in smbc.actions.deliveries, imported when the command runs so `smbc --help` stays fast)."""

    def command(
        store: str = STORE,
        delivery_id: int = typer.Argument(..., metavar="DELIVERY_ID", help="as `smbc activity` lists it"),
    ) -> None:
        from smbc.actions import deliveries

        _run(store, delivery_id, getattr(deliveries, action), getattr(deliveries, message))

    deliveries_app.command(name, help=summary)(command)


_delivery_command(
    "retry",
    "Queue a failed or skipped delivery again, with a fresh count of attempts.",
    action="retry_delivery",
    message="retried_message",
)
_delivery_command(
    "resend",
    "Send a delivery's unconfirmed events again (SALESmanago may already have them: check first).",
    action="resend_unconfirmed",
    message="resent_message",
)
