"""Why a store's sync is paused. One enum, stored as its value in `stores.sync_paused_reason`."""

from __future__ import annotations

from enum import StrEnum

from smbc.core.remote_calls import RemoteCallError, Service


class PauseReason(StrEnum):
    SALESMANAGO_CREDENTIALS = "credentials"  # SALESmanago refused the stored credentials
    BIGCOMMERCE_CREDENTIALS = "bigcommerce_credentials"  # BigCommerce refused the store's token
    LOGGED_OUT = "logged_out"  # the merchant logged out of SALESmanago
    UNINSTALLED = "uninstalled"

    @property
    def lifted_by_login(self) -> bool:
        return self in (PauseReason.SALESMANAGO_CREDENTIALS, PauseReason.LOGGED_OUT)


# Reasons that a later success (a login, a new token) lifts; an uninstalled store stays paused.
RESUMABLE = (PauseReason.SALESMANAGO_CREDENTIALS, PauseReason.BIGCOMMERCE_CREDENTIALS, PauseReason.LOGGED_OUT)


def pause_reason_for(exc: RemoteCallError) -> PauseReason:
    """The pause a CREDENTIALS outcome calls for: whose credentials were refused."""
    if exc.service is Service.BIGCOMMERCE:
        return PauseReason.BIGCOMMERCE_CREDENTIALS
    return PauseReason.SALESMANAGO_CREDENTIALS
