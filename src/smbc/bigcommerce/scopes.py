"""The OAuth scopes the app needs: the ONE list (also shown in the README for the Dev Portal set-up).

A merchant accepts all requested scopes or none, but the granted list is still checked: a Dev Portal
profile that lacks one would otherwise fail later, store by store, with 403s from the API.
"""

from __future__ import annotations

# scope -> why the app needs it
REQUIRED_SCOPES: dict[str, str] = {
    "store_v2_customers": "read customers and write newsletter opt-in/opt-out back to subscribers",
    "store_v2_orders_read_only": "read orders and order statuses for PURCHASE events",
    "store_cart_read_only": "read carts for CART events",
    "store_v2_content": "install SALESmanago's monitoring code with the Scripts API",
    "store_v2_information_read_only": "read the store's name, time zone and numeric id",
    "store_channel_settings_read_only": "list storefronts (channels) for multi-storefront set-up",
    "store_sites_read_only": "read each storefront's primary URL (its SALESmanago location)",
    "store_v2_products_read_only": "read products, categories and brands for the SALESmanago product catalog",
}

_READ_ONLY = "_read_only"


def parse_scopes(value: str | None) -> set[str]:
    """BigCommerce sends granted scopes space-separated (commas tolerated)."""
    return {part for part in (value or "").replace(",", " ").split() if part}


def missing_scopes(granted: set[str], required: dict[str, str] | None = None) -> list[str]:
    """Required scopes not covered by `granted`; a modify scope covers its `_read_only` variant."""
    missing = []
    for scope in required or REQUIRED_SCOPES:
        if scope in granted:
            continue
        if scope.endswith(_READ_ONLY) and scope.removesuffix(_READ_ONLY) in granted:
            continue
        missing.append(scope)
    return missing
