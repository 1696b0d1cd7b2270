"""One module per resource family; `smbc.realtime.processing` maps each scope to its handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smbc.engine.context import Context
from smbc.realtime.models import WebhookDelivery


def current_resource(
    ctx: Context, group: str, delivery: WebhookDelivery, read: Callable[[int], dict[str, Any] | None]
) -> tuple[int, dict[str, Any] | None]:
    """The delivery's resource id, and the resource as BigCommerce has it now (None: deleted
    meanwhile): from the batch's shared read of its group when there was one, else read alone."""
    resource_id = int(delivery.resource_id or 0)
    if group in ctx.prefetched:
        return resource_id, ctx.prefetched[group].get(resource_id)
    return resource_id, read(resource_id)
