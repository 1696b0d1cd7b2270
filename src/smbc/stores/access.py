"""Who is using the app: one user of one store, and their role there."""

from __future__ import annotations

from dataclasses import dataclass


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
