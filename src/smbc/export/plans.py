"""What the events export plans for one order: its events to send and its buyer to upsert."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from smbc.mapping.rules import EventKind

# A payload as planned, or as the JSON it is sent as once its batch waits (`hold_encoded`).
Payload = dict[str, Any] | msgspec.Raw


@dataclass
class PlannedEvent:
    kind: EventKind
    key: str
    order_id: int
    email: str
    item: Payload  # one entry of addBatchContactExtEvent's `events`


@dataclass
class OrderPlan:
    order_id: int
    in_range: bool = True
    events: list[PlannedEvent] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    contact: tuple[str, Payload, bool | None] | None = None  # email, upsert payload, subscribed


# A batch's buyers by e-mail: (upsert payload, subscribed).
BatchContacts = dict[str, tuple[Payload, bool | None]]


def hold_encoded(batch: list[OrderPlan]) -> None:
    """Keep a batch's events and buyers as the JSON they are sent as (a bytes object each instead of
    nested dicts and their strings: smaller, and nothing for the garbage collector to scan) while it
    waits for its buyers' lead, so more batches wait within the same memory. The SALESmanago client
    sends an encoded item as it is; `payload_dict` gives a buyer back as a dict."""
    encode = msgspec.json.encode
    for plan in batch:
        for event in plan.events:
            if event.item.__class__ is not msgspec.Raw:
                event.item = msgspec.Raw(encode(event.item))
        if plan.contact is not None and plan.contact[1].__class__ is not msgspec.Raw:
            email, payload, subscribed = plan.contact
            plan.contact = (email, msgspec.Raw(encode(payload)), subscribed)


def payload_dict(payload: Payload) -> dict[str, Any]:
    """A planned payload as a dict, decoded if its batch held it encoded."""
    if isinstance(payload, msgspec.Raw):
        decoded: dict[str, Any] = msgspec.json.decode(payload)
        return decoded
    return payload


def batch_contacts(batch: list[OrderPlan]) -> BatchContacts:
    """One upsert per buyer of a batch: the first order's data; subscribed if any order ticked the box."""
    contacts: BatchContacts = {}
    for plan in batch:
        if plan.contact is not None:
            email, payload, subscribed = plan.contact
            earlier = contacts.get(email)
            contacts[email] = (earlier[0], earlier[1] or subscribed) if earlier else (payload, subscribed)
    return contacts
