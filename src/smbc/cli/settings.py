"""`smbc settings show|set`: a store's settings, with the dashboard's validation."""

from __future__ import annotations

import json

import typer
from sqlalchemy.orm import Session

from smbc.cli.common import STORE, actor, fail, store_runtime, store_session
from smbc.db.models import Store

settings_app = typer.Typer(help="A store's settings (keys as in the documentation)", no_args_is_help=True)

READ_ONLY_KEYS = (
    "sm.client_id",
    "sm.endpoint",
    "sm.connected",
    "callback_url.opt_in",
    "callback_url.opt_out",
)


# -- smbc settings -------------------------------------------------------------------------------------------


def current_keys(session: Session, store: Store, app_url: str) -> dict[str, str]:
    """Every settings key (locations with their defaults) plus the read-only account keys."""
    from smbc.account.credentials import callback_urls, effective_locations, get_account
    from smbc.settings.store_settings import load_store_settings, settings_to_keys

    settings = load_store_settings(session, store.id)
    keys = settings_to_keys(settings, effective_locations(store, settings))
    account = get_account(session, store.id)
    urls = callback_urls(app_url, store)
    keys.update(
        {
            "sm.client_id": account.client_id if account else "",
            "sm.endpoint": account.endpoint if account else "",
            "sm.connected": "true" if account else "false",
            "callback_url.opt_in": urls["opt_in"],
            "callback_url.opt_out": urls["opt_out"],
        }
    )
    return keys


@settings_app.command("show")
def settings_show(
    store: str = STORE,
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Print every settings key and the read-only SALESmanago keys."""
    with store_session(store) as (session, store_row, settings):
        keys = current_keys(session, store_row, settings.app_url)  # type: ignore[attr-defined]
    if as_json:
        typer.echo(json.dumps(keys, indent=2))
        return
    width = max(len(k) for k in keys)
    for key, value in keys.items():
        typer.echo(f"{key.ljust(width)}  {value}")


@settings_app.command("set")
def settings_set(
    assignments: list[str] = typer.Argument(..., metavar="KEY=VALUE...", help="e.g. tags.purchase=VIP,BUYER"),
    store: str = STORE,
) -> None:
    """Change settings with the dashboard's validation; nothing is saved when a value is wrong."""
    from smbc.actions.settings import save_settings
    from smbc.settings.store_settings import SettingsInvalid

    changes: dict[str, object] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise fail(f"{item!r}: write KEY=VALUE (for example cart_event_window=1h).", 2)
        if key in READ_ONLY_KEYS:
            raise fail(f"{key} is read-only (it comes from the SALESmanago login).", 2)
        changes[key] = value
    with store_runtime(store) as (db, settings):
        try:
            # The storefront code follows a monitoring change at once, as the Monitoring tab's Save.
            saved = save_settings(db, store, changes, actor(), app_url=settings.app_url)
        except SettingsInvalid as exc:
            for key, message in exc.errors.items():
                typer.echo(f"{key}: {message}", err=True)
            raise fail("Nothing was saved.") from None
    if not saved.changed:
        typer.echo("No change.")
    for key in saved.changed:
        typer.echo(f"{key}: {saved.before.get(key, '')!r} -> {saved.after.get(key, '')!r}")
    if saved.monitoring is not None:
        live = sorted(str(script.get("channel_id")) for script in saved.monitoring.live)
        where = f"storefront channel(s) {', '.join(live)}" if live else "no storefront"
        if not saved.monitoring.ok:
            raise fail(f"Saved, but the monitoring code was not updated: {saved.monitoring.error}")
        typer.echo(f"The monitoring code is live on {where}.")
