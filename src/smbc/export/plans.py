"""What the events export plans for one order: its events to send and its buyer to upsert."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from smbc.mapping.rules import EventKind


@dataclass
class PlannedEvent:
    kind: EventKind
    key: str
    order_id: int
    email: str
    item: dict[str, Any]  # one entry of addBatchContactExtEvent's `events`


@dataclass
class OrderPlan:
    order_id: int
    in_range: bool = True
    events: list[PlannedEvent] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    contact: tuple[str, dict[str, Any], bool | None] | None = None  # email, upsert payload, subscribed


# A batch's buyers by e-mail: (upsert payload, subscribed).
BatchContacts = dict[str, tuple[dict[str, Any], bool | None]]


def batch_contacts(batch: list[OrderPlan]) -> BatchContacts:
    """One upsert per buyer of a batch: the first order's data; subscribed if any order ticked the box."""
    contacts: BatchContacts = {}
    for plan in batch:
        if plan.contact is not None:
            email, payload, subscribed = plan.contact
            earlier = contacts.get(email)
            contacts[email] = (earlier[0], earlier[1] or subscribed) if earlier else (payload, subscribed)
    return contacts
