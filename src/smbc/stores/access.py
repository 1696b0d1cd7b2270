"""Who is using the app (one user of one store, and their role there), and the one rule of who may
steer the store's integration: connect, disconnect or re-point SALESmanago, change the Account tab,
name the managers, and see or rotate the callback token. That is the store owner and the `managers`
the owner names; every other user the owner gave the app to sees the Account tab read-only.

The operator at the shell (`smbc ...`) is trusted and not asked."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from smbc.account.credentials import rotate_callback_secret
from smbc.db.models import Store
from smbc.settings.store_settings import ACCOUNT_KEYS, LOCATION_PREFIX, StoreSettings, record_change

# The Account tab's settings: changing them steers the integration (the managers themselves, who
# SALESmanago assigns contacts to, double opt-in, whether SALESmanago may change subscriptions).
STEERING_KEYS = frozenset({"managers", *ACCOUNT_KEYS})
NOT_ALLOWED = "Only the store owner and the managers named on the Account tab can do this."


@dataclass(frozen=True)
class DashboardSession:
    store_hash: str
    user_id: int  # our users.id
    bc_user_id: int
    role: str  # owner | user
    email: str

    @property
    def is_owner(self) -> bool:
        return self.role == "owner"


def is_steering_key(key: str) -> bool:
    return key in STEERING_KEYS or key.startswith(LOCATION_PREFIX)


def may_steer(session: DashboardSession, settings: StoreSettings) -> bool:
    """The store owner, or a user whose BigCommerce e-mail is one of the store's `managers`."""
    if session.is_owner:
        return True
    email = session.email.strip().lower()
    return bool(email) and email in settings.managers


def who_may_steer(store: Store, settings: StoreSettings) -> str:
    """One line for the read-only Account tab: who can change it."""
    owner = f"the store owner ({store.owner_email})" if store.owner_email else "the store owner"
    if not settings.managers:
        return f"Only {owner} can change these settings."
    return f"Only {owner} and the managers {', '.join(settings.managers)} can change these settings."


def rotate_callback_token(session: Session, store: Store, actor: str, reason: str) -> None:
    """A new callback token (the old callback URLs stop working), logged with its reason."""
    rotate_callback_secret(store)
    record_change(session, store.id, actor, "callback_token", "(previous)", f"(rotated: {reason})"[:200])


def rotate_if_managers_removed(
    session: Session, store: Store, before: StoreSettings, after: StoreSettings, actor: str
) -> list[str]:
    """Rotate the callback token when someone who could see it is no longer a manager; the removed."""
    removed = [email for email in before.managers if email not in after.managers]
    if removed:
        rotate_callback_token(session, store, actor, "manager removed: " + ", ".join(removed))
    return removed


def rotate_if_manager_left(session: Session, store: Store, settings: StoreSettings, email: str) -> bool:
    """A manager's BigCommerce user was removed from the store: they saw the callback token."""
    if not email or email.strip().lower() not in settings.managers:
        return False
    rotate_callback_token(session, store, "bigcommerce", f"manager's user removed: {email.lower()}")
    return True
