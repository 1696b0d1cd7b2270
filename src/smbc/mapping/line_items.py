"""An order's or a cart's line items -> the columns of its SALESmanago event (products, names,
quantities, the other identifiers), read from BigCommerce's consignments. Pure, as `records`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from smbc.mapping.rules import lang_code


def clean_text(value: Any) -> str | None:
    """The value as trimmed text; None for None or blank text."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _is_mapping(value: Any) -> bool:
    # A plain dict or list (what JSON gives) without the Mapping ABC's check, which costs tens of
    # microseconds in the export's process (a list's, once per order: its negative cache is reset).
    kind = value.__class__
    if kind is dict:
        return True
    if kind is list:
        return False
    return isinstance(value, Mapping)


def _consignment_groups(consignments: Any) -> Iterable[Mapping[str, Any]]:
    # Plain loops, no nested generators: read twice per order by the events export.
    for block in consignments if isinstance(consignments, list) else [consignments]:
        if not _is_mapping(block):
            continue
        for key in ("shipping", "pickups", "downloads"):
            for group in block.get(key) or []:
                if _is_mapping(group):
                    yield group
        email = block.get("email") or {}
        if _is_mapping(email):
            for group in email.get("gift_certificates") or []:
                if _is_mapping(group):
                    yield group


def order_line_items(order: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Line items from `include=consignments.line_items`; None when the answer has only links (the
    caller then reads `/v2/orders/{id}/products`)."""
    consignments = order.get("consignments")
    if not consignments:
        return None
    items: dict[Any, dict[str, Any]] = {}
    for group in _consignment_groups(consignments):
        line_items = group.get("line_items") or []
        if _is_mapping(line_items):
            line_items = [line_items]
        for item in line_items:
            if not _is_mapping(item) or "product_id" not in item:
                return None  # a {url, resource} link: not expanded
            items.setdefault(item.get("id"), dict(item))
    return list(items.values()) or None


def shipping_methods(order: Mapping[str, Any]) -> list[str]:
    methods: list[str] = []
    for group in _consignment_groups(order.get("consignments") or []):
        name = group.get("shipping_method") or group.get("pickup_method_display_name")
        if name and name not in methods:
            methods.append(str(name))
    return methods


_IDENTIFIER_FIELDS = {"id": "product_id", "sku": "sku", "variant_id": "variant_id"}


def product_identifiers(items: Sequence[Mapping[str, Any]], identifier: str) -> tuple[str, str, str]:
    """(products, detail6, detail7): the chosen identifier, then the two others."""
    order = [identifier, *[k for k in ("id", "sku", "variant_id") if k != identifier]]

    def column(kind: str) -> str:
        values = [str(item.get(_IDENTIFIER_FIELDS[kind]) or "") for item in items]
        return ",".join(v for v in values if v and v != "0")

    return column(order[0]), column(order[1]), column(order[2])


def items_columns(
    items: Sequence[Mapping[str, Any]],
    identifier: str,
    *,
    locale: Any,
    currency: Any,
    note: str | None = None,
    shipping: str | None = None,
    products_only: bool = False,
) -> tuple[str | None, tuple[str | None, ...]]:
    """An event's `products` (the chosen identifier) and its details 1-9, the same for orders and
    carts: names, (2: left to the event), quantities, note, shipping methods, the two other
    identifiers, language, currency. With `products_only`, the order's products alone (not
    a bundle's or an option's child items).

    One pass over the items building every column (as `product_identifiers` and the joins would):
    the events export maps every order's items."""
    columns: dict[str, list[str]] = {"id": [], "sku": [], "variant_id": []}
    ids, skus, variants = columns["id"], columns["sku"], columns["variant_id"]
    names: list[str] = []
    quantities: list[str] = []
    for item in items:
        get = item.get
        if products_only and (get("parent_order_product_id") or get("is_bundled_product")):
            continue
        value = get("product_id")  # each kept as str(value) when neither empty nor "0"
        if value and (text := str(value)) and text != "0":
            ids.append(text)
        value = get("sku")
        if value and (text := str(value)) and text != "0":
            skus.append(text)
        value = get("variant_id")
        if value and (text := str(value)) and text != "0":
            variants.append(text)
        names.append(str(get("name") or ""))
        quantities.append(str(int(get("quantity") or 0)))
    others = [k for k in ("id", "sku", "variant_id") if k != identifier]
    chosen, other1, other2 = (
        ",".join(columns[identifier]),
        ",".join(columns[others[0]]),
        ",".join(columns[others[1]]),
    )
    language = lang_code(locale)
    return chosen or None, (
        ", ".join(names) or None,
        None,  # the WooCommerce order key has no BigCommerce equivalent; a RETURN puts its refund id here
        "/".join(quantities) or None,
        note,
        shipping,
        other1 or None,
        other2 or None,
        language.lower() if language else None,
        clean_text(currency),
    )
