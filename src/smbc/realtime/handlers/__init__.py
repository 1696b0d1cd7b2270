"""One module per resource family; `smbc.realtime.processing` maps each scope to its handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from smbc.engine.context import Context


def current_resource(
    ctx: Context, group: str, resource_id: int, read: Callable[[int], dict[str, Any] | None]
) -> dict[str, Any] | None:
    """The resource as BigCommerce has it now: from the batch's shared read of its group when there
    was one (absent there: deleted meanwhile), else read alone."""
    if group in ctx.prefetched:
        return ctx.prefetched[group].get(resource_id)
    return read(resource_id)
