"""`smbc deliveries retry` and `resend`: the Activity tab's Retry and Send again from the command line."""

from __future__ import annotations

import typer

from smbc.cli.common import STORE, fail, store_runtime

deliveries_app = typer.Typer(
    help="Webhook deliveries of a store (list them with `smbc activity`)", no_args_is_help=True
)


@deliveries_app.command("retry")
def deliveries_retry(
    store: str = STORE,
    delivery_id: int = typer.Argument(..., metavar="DELIVERY_ID", help="as `smbc activity` lists it"),
) -> None:
    """Queue a failed or skipped delivery again, with a fresh count of attempts."""
    from smbc.actions.deliveries import DeliveryNotFound, retry_delivery

    with store_runtime(store) as (db, _settings):
        try:
            queued = retry_delivery(db, store, delivery_id)
        except DeliveryNotFound as exc:
            raise fail(str(exc)) from None
    if not queued:
        raise fail(f"Delivery {delivery_id} is not failed or skipped, so it was not retried.")
    typer.echo(f"Delivery {delivery_id} was queued again.")


@deliveries_app.command("resend")
def deliveries_resend(
    store: str = STORE,
    delivery_id: int = typer.Argument(..., metavar="DELIVERY_ID", help="as `smbc activity` lists it"),
) -> None:
    """Send a delivery's unconfirmed events again (SALESmanago may already have them: check first)."""
    from smbc.actions.deliveries import DeliveryNotFound, resend_unconfirmed

    with store_runtime(store) as (db, _settings):
        try:
            released = resend_unconfirmed(db, store, delivery_id)
        except DeliveryNotFound as exc:
            raise fail(str(exc)) from None
    if not released:
        raise fail(f"Delivery {delivery_id} has no unconfirmed event, so nothing was sent again.")
    typer.echo(f"Delivery {delivery_id} was queued again to send {released} unconfirmed event(s).")
