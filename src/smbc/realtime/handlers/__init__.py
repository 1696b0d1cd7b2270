"""One module per resource family; `smbc.realtime.processing` maps each scope to its handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from smbc.engine.context import Context
from smbc.engine.queue import ClaimedRow


class Delivery(ClaimedRow, Protocol):
    """What a handler reads of an inbox row: the Core row a drain claimed (`queue.claim_store_rows`,
    no ORM instance), or a `WebhookDelivery`. Read-only: a handler returns a `Result`, and the engine
    writes the row."""

    store_id: int
    scope: str
    resource_id: str
    payload: dict[str, Any]
    source: str


def current_resource(
    ctx: Context, group: str, delivery: Delivery, read: Callable[[int], dict[str, Any] | None]
) -> tuple[int, dict[str, Any] | None]:
    """The delivery's resource id, and the resource as BigCommerce has it now (None: deleted
    meanwhile): from the batch's shared read of its group when there was one, else read alone."""
    resource_id = int(delivery.resource_id or 0)
    if group in ctx.prefetched:
        return resource_id, ctx.prefetched[group].get(resource_id)
    return resource_id, read(resource_id)
