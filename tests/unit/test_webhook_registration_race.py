"""Two set-ups of one store registering hooks at once: BigCommerce keeps one hook per scope and
destination and refuses the second create (422), which must count as already registered."""

from __future__ import annotations

from typing import Any

import pytest

from smbc.core.remote_calls import Outcome, RemoteCallError
from smbc.stores.hooks import NEEDED_SCOPES, SECRET_HEADER, sync_hooks

DESTINATION = "https://app.example/webhooks/bigcommerce"


class RacingHooks:
    """A /v3/hooks where another worker creates every hook just before we try to."""

    def __init__(self, other_headers: dict[str, str], refusal: Outcome = Outcome.INVALID) -> None:
        self.registered: list[dict[str, Any]] = []
        self.other_headers = other_headers
        self.refusal = refusal
        self.updates: list[tuple[int, dict[str, Any]]] = []

    def hooks(self) -> list[dict[str, Any]]:
        return [dict(h) for h in self.registered]

    def create_hook(self, body: dict[str, Any]) -> dict[str, Any]:
        theirs = {**body, "id": len(self.registered) + 1, "headers": self.other_headers}
        self.registered.append(theirs)
        raise RemoteCallError(
            self.refusal, "A webhook with this scope and destination already exists", status=422
        )

    def update_hook(self, hook_id: int, fields: dict[str, Any]) -> dict[str, Any]:
        self.updates.append((hook_id, fields))
        hook = next(h for h in self.registered if h["id"] == hook_id)
        hook.update(fields)
        return hook


def test_a_hook_created_meanwhile_is_adopted_not_an_error() -> None:
    api = RacingHooks(other_headers={SECRET_HEADER: "s3cret"})
    result = sync_hooks(api, DESTINATION, "s3cret")
    assert sorted(result.unchanged) == sorted(NEEDED_SCOPES) and not result.created
    assert api.updates == []  # the other worker wrote the same header: nothing to fix


def test_a_hook_created_meanwhile_with_another_secret_is_fixed() -> None:
    api = RacingHooks(other_headers={SECRET_HEADER: "old"})
    sync_hooks(api, DESTINATION, "new")
    assert {h["headers"][SECRET_HEADER] for h in api.registered} == {"new"}


def test_other_refusals_still_fail() -> None:
    api = RacingHooks(other_headers={}, refusal=Outcome.RETRY)
    with pytest.raises(RemoteCallError):
        sync_hooks(api, DESTINATION, "s3cret")
