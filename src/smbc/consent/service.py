"""Newsletter consent from SALESmanago back to BigCommerce: the actions a write-back carries and the
pure rule of what it does to a subscriber's consents. The rows are queued and applied by
`smbc.consent.write_back` (BigCommerce -> SALESmanago is the consent plan, `smbc.consent.plan`).
"""

from __future__ import annotations

from collections.abc import Iterable

from smbc.mapping.rules import NEWSLETTER

OPT_IN = "opt_in"
OPT_OUT = "opt_out"
ACTIONS = (OPT_IN, OPT_OUT)
SOURCE_CALLBACK = "callback"
SOURCE_OPT_IN_SYNC = "opt_in_sync"


def consents_after(action: str, consents: Iterable[str] | None) -> list[str] | None:
    """A subscriber's consents once `action` is applied; None when nothing needs writing.

    Opt-in adds `marketing_newsletter` (other consents kept); opt-out empties the list (the record
    is kept: an empty consent list is "not opted in", and keeping the subscriber beats deleting it)."""
    current = list(dict.fromkeys(consents or []))
    if action == OPT_IN:
        return None if NEWSLETTER in current else [*current, NEWSLETTER]
    if action == OPT_OUT:
        return [] if current else None
    raise ValueError(f"unknown consent action {action!r}")
