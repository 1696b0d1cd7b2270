"""Which deliveries of a drain's batch are handled: those about one resource are handled once (each
handler reads the resource's current state), and a cart's changes beside its conversion not at all."""

from __future__ import annotations

from collections.abc import Sequence

from smbc.engine.context import Result
from smbc.realtime.handlers import Delivery
from smbc.realtime.handlers.carts import CART_CLOSING_SCOPES, CART_GONE

# Scopes read together: pending deliveries of one store in one group share one `id:in` read.
COALESCE_GROUPS: dict[str, tuple[str, ...]] = {
    "customer": (
        "store/customer/created",
        "store/customer/updated",
        "store/customer/address/created",
        "store/customer/address/updated",
        "store/customer/address/deleted",
    ),
    "subscriber": ("store/subscriber/created", "store/subscriber/updated"),
    "product": (
        "store/product/created",
        "store/product/updated",
        "store/product/inventory/updated",
        "store/product/inventory/order/updated",
        "store/sku/inventory/updated",
        "store/sku/inventory/order/updated",
    ),
}
GROUP_OF = {scope: group for group, scopes in COALESCE_GROUPS.items() for scope in scopes}
# Deliveries about one resource in one batch are handled once: each handler reads the resource's
# current state, so a second would only repeat the first (and its retry, when the send failed).
_SAME_RESOURCE = {
    **GROUP_OF,
    **dict.fromkeys(("store/order/created", "store/order/updated", "store/order/statusUpdated"), "order"),
    # A cart's creation and changes: one read of the cart as it is now (a burst's are mostly gone).
    **dict.fromkeys(("store/cart/created", "store/cart/updated"), "cart"),
}
_CART_CHANGES = frozenset({"store/cart/created", "store/cart/updated"})
# When deliveries about one resource are coalesced, these win (a registration keeps its tags);
# note `store/customer/address/created` is not one of them.
_CREATED_SCOPES = frozenset({"store/customer/created", "store/subscriber/created"})


def coalesce_same_resource(batch: Sequence[Delivery], results: dict[int, Result]) -> list[Delivery]:
    """Several deliveries about one customer (or order, ...) in a batch: handle one (a `created` if
    there is one)."""
    chosen: dict[tuple[str, str], Delivery] = {}
    for delivery in batch:
        family = _SAME_RESOURCE.get(delivery.scope)
        if family is None or not delivery.resource_id:
            chosen[(delivery.scope, str(delivery.id))] = delivery
            continue
        key = (family, delivery.resource_id)
        current = chosen.get(key)
        if current is None or (delivery.scope in _CREATED_SCOPES and current.scope not in _CREATED_SCOPES):
            chosen[key] = delivery
    primary = list(chosen.values())
    kept = {d.id for d in primary}
    for delivery in batch:
        if delivery.id not in kept:
            winner = next(
                d
                for d in primary
                if _SAME_RESOURCE.get(d.scope) == _SAME_RESOURCE.get(delivery.scope)
                and d.resource_id == delivery.resource_id
            )
            results[delivery.id] = Result.done(f"coalesced with delivery {winner.id}")
    return primary


def skip_closed_carts(primary: list[Delivery], results: dict[int, Result]) -> list[Delivery]:
    """A cart's change in a batch that also has its conversion (or deletion): skipped as the read of
    the cart would skip it (the conversion's webhook came after the cart was gone), without the read."""
    closed = {d.resource_id for d in primary if d.scope in CART_CLOSING_SCOPES and d.resource_id}
    if not closed:
        return primary
    kept = []
    for delivery in primary:
        if delivery.scope in _CART_CHANGES and delivery.resource_id in closed:
            results[delivery.id] = Result.skipped(CART_GONE)
        else:
            kept.append(delivery)
    return kept
