"""BigCommerce webhook deliveries as BigCommerce sends them: the envelope (`webhook_callback_base`)
and, per scope, the shape of `data`; what a delivery is about; the digest BigCommerce puts in `hash`."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from smbc.core.json_bodies import InvalidJSON, parse_json


class _Data(BaseModel):
    model_config = ConfigDict(extra="allow")


class CustomerData(_Data):
    type: Literal["customer"]
    id: int


class AddressRef(_Data):
    customer_id: int


class AddressData(_Data):
    type: Literal["customer"]
    id: int
    address: AddressRef


class SubscriberData(_Data):
    type: Literal["subscriber"]
    id: int


class OrderData(_Data):
    type: Literal["order"]
    id: int


class StatusChange(_Data):
    previous_status_id: int
    new_status_id: int


class OrderStatusData(OrderData):
    status: StatusChange


class RefundRef(_Data):
    refund_id: int


class OrderRefundData(OrderData):
    refund: RefundRef


class CartData(_Data):
    type: Literal["cart"]
    id: str = Field(min_length=1, max_length=64)


class CartConvertedData(CartData):
    orderId: int  # BigCommerce writes this one in camelCase


class ChannelData(_Data):
    type: Literal["channel"]
    id: int


class StoreData(_Data):
    type: str | None = None


class ProductData(_Data):
    type: Literal["product"]
    id: int


class InventoryRef(_Data):
    product_id: int


class ProductInventoryData(ProductData):
    inventory: InventoryRef


class SkuInventoryData(_Data):
    type: Literal["sku"]
    id: int
    inventory: InventoryRef


DATA_SCHEMAS: dict[str, type[_Data]] = {
    "store/customer/created": CustomerData,
    "store/customer/updated": CustomerData,
    "store/customer/deleted": CustomerData,
    "store/customer/address/created": AddressData,
    "store/customer/address/updated": AddressData,
    "store/customer/address/deleted": AddressData,
    "store/subscriber/created": SubscriberData,
    "store/subscriber/updated": SubscriberData,
    "store/subscriber/deleted": SubscriberData,
    "store/order/created": OrderData,
    "store/order/updated": OrderData,
    "store/order/archived": OrderData,
    "store/order/statusUpdated": OrderStatusData,
    "store/order/refund/created": OrderRefundData,
    "store/cart/created": CartData,
    "store/cart/updated": CartData,
    "store/cart/deleted": CartData,
    "store/cart/converted": CartConvertedData,
    "store/channel/created": ChannelData,
    "store/channel/updated": ChannelData,
    "store/information/updated": StoreData,
    "store/app/uninstalled": StoreData,
    "store/product/created": ProductData,
    "store/product/updated": ProductData,
    "store/product/deleted": ProductData,
    "store/product/inventory/updated": ProductInventoryData,
    "store/product/inventory/order/updated": ProductInventoryData,
    "store/sku/inventory/updated": SkuInventoryData,
    "store/sku/inventory/order/updated": SkuInventoryData,
}


class DeliveryEnvelope(BaseModel):
    model_config = ConfigDict(extra="allow")

    scope: str = Field(pattern=r"^store/[A-Za-z0-9_/]+$", max_length=96)
    store_id: str = Field(min_length=1, max_length=32)
    data: dict[str, Any]
    hash: str = Field(min_length=1, max_length=64)
    created_at: int = Field(ge=0)
    producer: str = Field(pattern=r"^stores/[A-Za-z0-9_-]+$", max_length=80)

    @property
    def store_hash(self) -> str:
        return self.producer.split("/", 1)[1]


class InvalidDelivery(ValueError):
    """The body is not a BigCommerce webhook delivery; the message says what is wrong."""


def _describe(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{prefix}{where}: {err['msg']}")
    return "; ".join(parts)


def parse_delivery(body: bytes) -> DeliveryEnvelope:
    """Validate the envelope and, for the scopes the app handles, the shape of `data`."""
    try:
        raw = parse_json(body)
    except InvalidJSON as exc:
        raise InvalidDelivery(f"body is {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidDelivery("body must be a JSON object")
    try:
        envelope = DeliveryEnvelope.model_validate(raw)
    except ValidationError as exc:
        raise InvalidDelivery(_describe(exc)) from None
    schema = DATA_SCHEMAS.get(envelope.scope)
    if schema is not None:
        try:
            schema.model_validate(envelope.data)
        except ValidationError as exc:
            raise InvalidDelivery(_describe(exc, "data.")) from None
    return envelope


def resource_id(scope: str, data: dict[str, Any]) -> str:
    """What the delivery is about: the customer of an address event, else `data.id`."""
    if scope.startswith("store/customer/address/"):
        return str((data.get("address") or {}).get("customer_id", ""))
    if scope.startswith("store/sku/inventory/"):  # a variant's stock: the delivery is about its product
        return str((data.get("inventory") or {}).get("product_id", ""))
    value = data.get("id")
    return "" if value is None else str(value)


def payload_digest(payload: dict[str, Any]) -> str:
    """SHA-1 of a JSON payload, the way BigCommerce fills `hash` (used for synthetic deliveries)."""
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha1(encoded, usedforsecurity=False).hexdigest()
