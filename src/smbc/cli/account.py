"""`smbc sm login|logout|rotate-callback-token`: the dashboard's account actions from the command line."""

from __future__ import annotations

import typer

from smbc.cli.common import STORE, actor, fail, store_runtime, warn

sm_app = typer.Typer(help="SALESmanago account of a store", no_args_is_help=True)


# -- smbc sm -----------------------------------------------------------------------------------------------


@sm_app.command("login")
def sm_login(
    store: str = STORE,
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
    from smbc.account.login import LoginFailed
    from smbc.actions import account as account_actions

    use_credentials = any(v is not None for v in (client_id, api_secret, owner))
    if use_credentials and email is not None:
        raise fail("Give either --email/--password or --client-id/--api-secret/--owner, not both.", 2)
    if use_credentials and not all((endpoint, client_id, api_secret, owner)):
        raise fail("API credentials need --endpoint, --client-id, --api-secret and --owner.", 2)
    if not use_credentials and not email:
        raise fail("Give --email (and --password), or API credentials with --client-id.", 2)
    if not use_credentials and password is None:
        password = typer.prompt("SALESmanago password", hide_input=True)
    with store_runtime(store) as (db, settings):
        try:
            if use_credentials:
                result = account_actions.login_with_api_credentials(
                    db,
                    store,
                    endpoint=endpoint or "",
                    client_id=client_id or "",
                    api_secret=api_secret or "",
                    owner=owner or "",
                    settings=settings,
                    actor=actor(),
                )
            else:
                result = account_actions.login_with_password(
                    db,
                    store,
                    email=email or "",
                    password=password or "",
                    endpoint=endpoint,
                    settings=settings,
                    actor=actor(),
                )
        except LoginFailed as exc:
            prefix = f"{exc.field}: " if exc.field else ""
            raise fail(f"Login failed. {prefix}{exc.message}") from None
    account = result.account
    typer.echo(f"Connected store {store} to SALESmanago client {account.client_id} at {account.endpoint}.")
    typer.echo(f"Owners: {', '.join(account.owners)}")
    warn(result.warnings)


@sm_app.command("logout")
def sm_logout(store: str = STORE) -> None:
    """Revoke the v3 key, forget the credentials and pause syncing for the store."""
    from smbc.actions import account as account_actions

    with store_runtime(store) as (db, settings):
        result = account_actions.logout(db, store, settings=settings, actor=actor())
    if not result.was_connected:
        typer.echo(f"Store {store} was not connected to SALESmanago.")
        return
    typer.echo(f"Logged out store {store}; syncing is paused until the next login.")
    warn(result.warnings)


@sm_app.command("rotate-callback-token")
def sm_rotate_callback_token(store: str = STORE) -> None:
    """Give the store new opt-in/opt-out callback URLs; the old ones stop working at once."""
    from smbc.actions import account as account_actions

    with store_runtime(store) as (db, settings):
        urls = account_actions.rotate_callback_token(db, store, actor=actor(), app_url=settings.app_url)
    typer.echo("New callback URLs: paste both into SALESmanago, the old ones no longer work.")
    typer.echo(f"opt-in:  {urls['opt_in']}")
    typer.echo(f"opt-out: {urls['opt_out']}")
