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


@deliveries_app.command("retry")
def deliveries_retry(
    store: str = STORE,
    delivery_id: int = typer.Argument(..., metavar="DELIVERY_ID", help="as `smbc activity` lists it"),
) -> None:
    """Queue a failed or skipped delivery again, with a fresh count of attempts."""
    from smbc.actions.deliveries import retried_message, retry_delivery

    _run(store, delivery_id, retry_delivery, retried_message)


@deliveries_app.command("resend")
def deliveries_resend(
    store: str = STORE,
    delivery_id: int = typer.Argument(..., metavar="DELIVERY_ID", help="as `smbc activity` lists it"),
) -> None:
    """Send a delivery's unconfirmed events again (SALESmanago may already have them: check first)."""
    from smbc.actions.deliveries import resend_unconfirmed, resent_message

    _run(store, delivery_id, resend_unconfirmed, resent_message)
