"""One module per resource family; `smbc.realtime.processing` maps each scope to its handler."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from smbc.engine.context import Context


class Delivery(Protocol):
    """What a handler reads of an inbox row: the Core row a drain claimed (`queue.claim_store_rows`,
    no ORM instance), or a `WebhookDelivery`."""

    @property
    def id(self) -> int: ...

    @property
    def store_id(self) -> int: ...

    @property
    def scope(self) -> str: ...

    @property
    def resource_id(self) -> str: ...

    @property
    def payload(self) -> dict[str, Any]: ...

    @property
    def source(self) -> str: ...

    @property
    def attempts(self) -> int: ...

    @property
    def received_at(self) -> datetime: ...


def current_resource(
    ctx: Context, group: str, delivery: Delivery, read: Callable[[int], dict[str, Any] | None]
) -> tuple[int, dict[str, Any] | None]:
    """The delivery's resource id, and the resource as BigCommerce has it now (None: deleted
    meanwhile): from the batch's shared read of its group when there was one, else read alone."""
    resource_id = int(delivery.resource_id or 0)
    if group in ctx.prefetched:
        return resource_id, ctx.prefetched[group].get(resource_id)
    return resource_id, read(resource_id)
