"""What the settings tabs' forms share: the choice tables their selects offer, and the state a form
is shown in (the submitted values over the saved ones, errors by field, notices at the top)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import FormData

NOT_SAVED = "Nothing was saved: correct the fields marked below."

CART_WINDOWS = [
    ("always_new", "Always create a new event"),
    ("15m", "15 minutes"),
    ("1h", "1 hour"),
    ("4h", "4 hours"),
    ("12h", "12 hours"),
    ("7d", "7 days"),
    ("always_update", "Always update the same event"),
]
PRODUCT_IDENTIFIERS = [("id", "Product ID"), ("sku", "SKU"), ("variant_id", "Variant ID")]
ORDER_STATUSES = [
    (1, "Pending"),
    (2, "Shipped"),
    (3, "Partially Shipped"),
    (4, "Refunded"),
    (5, "Cancelled"),
    (6, "Declined"),
    (7, "Awaiting Payment"),
    (8, "Awaiting Pickup"),
    (9, "Awaiting Shipment"),
    (10, "Completed"),
    (11, "Awaiting Fulfillment"),
    (12, "Manual Verification Required"),
    (13, "Disputed"),
    (14, "Partially Refunded"),
]
CONSENT_CATEGORIES = [
    ("essential", "Essential"),
    ("functional", "Functional"),
    ("analytics", "Analytics (recommended)"),
    ("targeting", "Targeting"),
]


@dataclass(frozen=True)
class FormState:
    """A form as shown: `values` (by field name) replace the saved ones; `notices` are (kind, text)."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    notices: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def told(cls, *notices: tuple[str, str]) -> FormState:
        return cls(notices=list(notices))

    @classmethod
    def refused(cls, values: dict[str, Any], errors: dict[str, str], message: str = NOT_SAVED) -> FormState:
        """A form saved nothing: shown again as submitted, each error next to its field."""
        return cls(values=values, errors=errors, notices=[("danger", message)])

    def context(self, saved: dict[str, Any]) -> dict[str, Any]:
        """The template's `values`, `errors` and `notices`."""
        return {
            "values": {**saved, **self.values},
            "errors": dict(self.errors),
            "notices": list(self.notices),
        }


async def posted_form(request: Request) -> FormData:
    """The posted form, read on the event loop; the route taking it is a plain `def`, so FastAPI runs it
    on a worker thread (it works with the database)."""
    return await request.form()


PostedForm = Annotated[FormData, Depends(posted_form)]
