"""What SALESmanago's SDK does to every payload before sending it (its DataHelper), in one place:
the mapping builds payloads with it and the client applies it once more to whatever it is given."""

from __future__ import annotations

from typing import Any

_CONTAINERS = (dict, list, tuple)


class CleanedPayload(dict[Any, Any]):
    """A dict as `clean_payload` leaves it. Nested in a payload cleaned again (the client cleans
    whatever it sends) it is kept as it is, not walked once more; its own keys are still cleaned
    when it is the payload itself, so a key added to it afterwards is cleaned too."""


def clean_payload(value: Any) -> Any:
    """Drop None, empty strings and empty lists/dicts, keep False and 0, trim strings.

    Written as loops with the common cases first: it runs on every field of every contact and
    event an export sends (millions of values for a large store)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, dict):
        out = CleanedPayload()
        for key, item in value.items():  # _cleaned_item's common cases inline: a call per field costs
            if item is None:
                continue
            kind = item.__class__
            if kind is str:
                item = item.strip()
                if item:
                    out[key] = item
            elif kind in _SCALARS:
                out[key] = item
            else:
                kept = _cleaned_item(item)
                if kept is not _DROP:
                    out[key] = kept
        return out
    if isinstance(value, list | tuple):
        items = []
        for item in value:
            kept = _cleaned_item(item)
            if kept is not _DROP:
                items.append(kept)
        return items
    return value


_DROP = object()
_SCALARS = frozenset({bool, int, float})  # kept as they are (False and 0 too)


def _cleaned_item(item: Any) -> Any:
    if item is None:
        return _DROP
    kind = item.__class__
    if kind is str:
        item = item.strip()
        return item if item else _DROP
    if kind is CleanedPayload:  # cleaned already: cleaning it again would give the same
        return item if item else _DROP
    if isinstance(item, _CONTAINERS):
        item = clean_payload(item)
        return item if item else _DROP
    return item
