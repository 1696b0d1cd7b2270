"""Finding the installed store an action is about, by its hash."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from smbc.db.models import Store


class StoreNotInstalled(LookupError):
    """No installed store has this hash (the dashboard answers 404, the CLI exits with a message)."""

    def __init__(self, store_hash: str) -> None:
        super().__init__(f"No installed store with hash {store_hash!r}.")
        self.store_hash = store_hash


def installed_store(session: Session, store_hash: str) -> Store:
    store = session.scalar(select(Store).where(Store.hash == store_hash))
    if store is None or not store.installed:
        raise StoreNotInstalled(store_hash)
    return store
