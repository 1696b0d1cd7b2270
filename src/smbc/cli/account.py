"""`smbc sm login|logout` and `smbc settings show|set`: the dashboard's account and settings actions
from the command line, with the same services and the same validation."""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from smbc.db.models import Store

sm_app = typer.Typer(help="SALESmanago account of a store", no_args_is_help=True)
settings_app = typer.Typer(help="A store's settings (keys as in the documentation)", no_args_is_help=True)

READ_ONLY_KEYS = (
    "sm.client_id",
    "sm.endpoint",
    "sm.connected",
    "callback_url.opt_in",
    "callback_url.opt_out",
)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "cli"


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


@contextmanager
def _store_session(
    store_hash: str, after_commit: list[Callable[[], None]] | None = None
) -> Iterator[tuple[Session, Store, object]]:
    """One unit of work on an installed store; `after_commit` callables run once it is committed."""
    from smbc.cli.main import _settings
    from smbc.core.runtime import close_runtime, init_runtime

    settings = _settings()
    runtime = init_runtime(settings, migrate=settings.is_sqlite)
    try:
        with runtime.db.session() as session:
            store = session.scalar(select(Store).where(Store.hash == store_hash))
            if store is None or not store.installed:
                raise _fail(f"No installed store with hash {store_hash!r} (see `smbc stores`).")
            yield session, store, settings
        for hook in after_commit or []:
            hook()
    finally:
        close_runtime()


# -- smbc sm -----------------------------------------------------------------------------------------------


@sm_app.command("login")
def sm_login(
    store: str = typer.Option(..., "--store", help="Store hash"),
    email: str | None = typer.Option(None, "--email", help="SALESmanago login e-mail"),
    password: str | None = typer.Option(None, "--password", help="Password (asked when omitted)"),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="Custom endpoint host (or the API endpoint)"
    ),
    client_id: str | None = typer.Option(None, "--client-id", help="API credentials: client ID"),
    api_secret: str | None = typer.Option(None, "--api-secret", help="API credentials: API secret"),
    owner: str | None = typer.Option(None, "--owner", help="API credentials: owner e-mail"),
) -> None:
    """Connect a store: e-mail and password, or --endpoint --client-id --api-secret --owner."""
    from smbc.account.login import (
        LoginFailed,
        login_with_api_credentials,
        login_with_password,
    )

    use_credentials = any(v is not None for v in (client_id, api_secret, owner))
    if use_credentials and email is not None:
        raise _fail("Give either --email/--password or --client-id/--api-secret/--owner, not both.", 2)
    if use_credentials and not all((endpoint, client_id, api_secret, owner)):
        raise _fail("API credentials need --endpoint, --client-id, --api-secret and --owner.", 2)
    if not use_credentials and not email:
        raise _fail("Give --email (and --password), or API credentials with --client-id.", 2)
    if not use_credentials and password is None:
        password = typer.prompt("SALESmanago password", hide_input=True)
    after_commit: list[Callable[[], None]] = []
    with _store_session(store, after_commit) as (session, store_row, settings):
        try:
            if use_credentials:
                result = login_with_api_credentials(
                    session,
                    store_row,
                    endpoint=endpoint or "",
                    client_id=client_id or "",
                    api_secret=api_secret or "",
                    owner=owner or "",
                    settings=settings,  # type: ignore[arg-type]
                    actor=_actor(),
                )
            else:
                result = login_with_password(
                    session,
                    store_row,
                    email=email or "",
                    password=password or "",
                    endpoint=endpoint,
                    settings=settings,  # type: ignore[arg-type]
                    actor=_actor(),
                )
        except LoginFailed as exc:
            prefix = f"{exc.field}: " if exc.field else ""
            raise _fail(f"Login failed. {prefix}{exc.message}") from None
        account = result.account
        typer.echo(
            f"Connected store {store} to SALESmanago client {account.client_id} at {account.endpoint}."
        )
        typer.echo(f"Owners: {', '.join(account.owners)}")
        for warning in result.warnings:
            typer.echo(f"Warning: {warning}", err=True)


@sm_app.command("logout")
def sm_logout(store: str = typer.Option(..., "--store", help="Store hash")) -> None:
    """Revoke the v3 key, forget the credentials and pause syncing for the store."""
    from smbc.account.login import logout, queue_monitoring_sync

    with _store_session(store) as (session, store_row, settings):
        result = logout(session, store_row, settings=settings, actor=_actor())  # type: ignore[arg-type]
        store_id = store_row.id
    if not result.was_connected:
        typer.echo(f"Store {store} was not connected to SALESmanago.")
        return
    queue_monitoring_sync(store_id)
    typer.echo(f"Logged out store {store}; syncing is paused until the next login.")
    for warning in result.warnings:
        typer.echo(f"Warning: {warning}", err=True)


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
    store: str = typer.Option(..., "--store", help="Store hash"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
) -> None:
    """Print every settings key and the read-only SALESmanago keys."""
    with _store_session(store) as (session, store_row, settings):
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
    store: str = typer.Option(..., "--store", help="Store hash"),
) -> None:
    """Change settings with the dashboard's validation; nothing is saved when a value is wrong."""
    from smbc.account.credentials import get_account, storefronts
    from smbc.settings.store_settings import SettingsInvalid, save_store_settings, settings_to_keys

    changes: dict[str, object] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise _fail(f"{item!r}: write KEY=VALUE (for example cart_event_window=1h).", 2)
        if key in READ_ONLY_KEYS:
            raise _fail(f"{key} is read-only (it comes from the SALESmanago login).", 2)
        changes[key] = value
    with _store_session(store) as (session, store_row, _settings):
        account = get_account(session, store_row.id)
        channel_ids = {s.channel_id for s in storefronts(store_row)}
        from smbc.settings.store_settings import load_store_settings

        before = settings_to_keys(load_store_settings(session, store_row.id))
        try:
            updated = save_store_settings(
                session,
                store_row.id,
                changes,
                _actor(),
                owners=account.owners if account else None,
                channel_ids=channel_ids,
            )
        except SettingsInvalid as exc:
            for key, message in exc.errors.items():
                typer.echo(f"{key}: {message}", err=True)
            raise _fail("Nothing was saved.") from None
        after = settings_to_keys(updated)
    changed = [k for k in after if before.get(k, "") != after[k]] + [k for k in before if k not in after]
    if not changed:
        typer.echo("No change.")
    if any(k.startswith("monitoring") for k in changed):
        from smbc.account.login import queue_monitoring_sync

        queue_monitoring_sync(store_row.id)  # the live storefront code follows the saved settings
    for key in changed:
        typer.echo(f"{key}: {before.get(key, '')!r} -> {after.get(key, '')!r}")
