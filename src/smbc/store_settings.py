"""A store's settings: one typed model with defaults (keys as in DESIGN.md, dots become `_`).

Storage, validation messages and the change log are added by the SALESmanago-account area; every
other area only reads `StoreSettings` through `load_store_settings()`.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, Field

CartEventWindow = Literal["always_new", "15m", "1h", "4h", "12h", "7d", "always_update"]
ProductIdentifier = Literal["id", "sku", "variant_id"]
ConsentCategory = Literal["essential", "functional", "analytics", "targeting"]

# BigCommerce status ids: Awaiting Fulfillment, Awaiting Shipment, Awaiting Pickup, Partially Shipped,
# Shipped, Completed. Never Incomplete (0).
DEFAULT_PURCHASE_STATUSES = [2, 3, 8, 9, 10, 11]


def default_location(primary_url: str) -> str:
    """`sm_` + md5 of the storefront's primary URL, as the official plugins do."""
    return "sm_" + hashlib.md5(primary_url.encode(), usedforsecurity=False).hexdigest()


class StoreSettings(BaseModel):
    locations: dict[int, str] = Field(default_factory=dict)  # channel id -> e-store ID
    contact_owner: str = ""
    double_opt_in_enabled: bool = False
    double_opt_in_template_id: str = ""
    double_opt_in_account_id: str = ""
    double_opt_in_subject: str = ""
    opt_in_sync: bool = False
    tags_registration: list[str] = Field(default_factory=list)
    tags_newsletter: list[str] = Field(default_factory=list)
    tags_purchase: list[str] = Field(default_factory=list)
    tags_guest_purchase: list[str] = Field(default_factory=list)
    cart_event_window: CartEventWindow = "12h"
    monitoring_cookie_days: int | None = None
    ignored_domains: list[str] = Field(default_factory=list)
    product_identifier: ProductIdentifier = "id"
    purchase_statuses: list[int] = Field(default_factory=lambda: list(DEFAULT_PURCHASE_STATUSES))
    delete_contact_on_customer_delete: bool = False
    newsletter_channel: int = 1
    monitoring_enabled: bool = True
    monitoring_custom_script: bool = False
    monitoring_banners: bool = False
    monitoring_popups: bool = False
    monitoring_channels: Literal["all"] | list[int] = "all"
    monitoring_consent_category: ConsentCategory = "analytics"

    def location_for(self, channel_id: int, primary_url: str) -> str:
        return self.locations.get(channel_id) or default_location(primary_url)
