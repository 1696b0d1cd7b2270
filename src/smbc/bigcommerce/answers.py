"""The BigCommerce answers the product reads, as models of exactly the fields it reads.

Reading rules (`smbc.core.answers`): a required field missing or wrongly typed makes the call's
outcome `invalid`; an opportunistic one falls back (None, or the default shown) with a warning
naming the call and the field. Fields not declared here pass through untouched, so callers keep
receiving the dicts they always did (`as_dict`), with the declared fields validated.

What is required: the identity of what is read (an `id`, a script's `uuid`, a cart's id), the
e-mail of a customer or subscriber (the contact's key) and, on an order, what decides whether and
when it is an event (`status_id`, `date_created`). Everything else is opportunistic: a purchase
without its phone number is still a purchase.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, StrictFloat, StrictInt, StrictStr

from smbc.bigcommerce.dates import parse_date
from smbc.core.answers import AnswerModel, opportunistic


def _numeric(value: str | int | float) -> str | int | float:
    float(value)  # a ValueError here is a validation error: "12.50" and 12.5 pass, "n/a" does not
    return value


# Money comes as a decimal string on /v2 ("12.5000") and as a number on /v3; both are kept as sent.
Money = Annotated[StrictStr | StrictInt | StrictFloat, AfterValidator(_numeric)]


def _readable_date(value: str) -> str:
    if parse_date(value) is None:
        raise ValueError("not a date in either of BigCommerce's forms")
    return value


# A date as sent (RFC-2822 on /v2, ISO-8601 on /v3), accepted only when it can be read as a date.
BcDate = Annotated[StrictStr, AfterValidator(_readable_date)]

M = TypeVar("M")


def as_dict(model: BaseModel) -> dict[str, Any]:
    """The answer object as callers know it: the keys that came, declared ones validated."""
    return model.model_dump(exclude_unset=True)


class NamedItem(AnswerModel):
    """An object known by its id (required) that also carries a display name (opportunistic)."""

    id: int
    name: str | None = opportunistic()


# -- installation --------------------------------------------------------------------------


class OAuthUser(AnswerModel):
    id: int
    email: str | None = opportunistic()


class OAuthToken(AnswerModel):
    """`POST /oauth2/token` on the login host: the store's token, for which store, and who installed.

    UNCONFIRMED that `owner` is always there: without it the installing user is taken as owner."""

    access_token: str
    context: str
    user: OAuthUser
    scope: str | None = opportunistic()
    owner: OAuthUser | None = opportunistic(often_absent=True)
    account_uuid: str | None = opportunistic(often_absent=True)


# -- store -----------------------------------------------------------------------------------


class Timezone(AnswerModel):
    name: str | None = opportunistic()


class StoreInfo(AnswerModel):
    """`GET /v2/store`: the store's number, names, addresses and language."""

    store_id: int | None = opportunistic()
    name: str | None = opportunistic()
    domain: str | None = opportunistic()
    secure_url: str | None = opportunistic()
    language: str | None = opportunistic(often_absent=True)
    timezone: Timezone | None = opportunistic(often_absent=True)


class ServerTime(AnswerModel):
    """`GET /v2/time`."""

    time: int


class Channel(NamedItem):
    type: str | None = opportunistic()
    status: str | None = opportunistic()


class SiteUrl(AnswerModel):
    url: str | None = opportunistic()
    type: str | None = opportunistic()


class Site(AnswerModel):
    id: int
    channel_id: int | None = opportunistic()
    url: str | None = opportunistic()
    urls: list[SiteUrl] | None = opportunistic(often_absent=True)


# -- customers and subscribers ----------------------------------------------------------------


class CustomerAddress(AnswerModel):
    address1: str | None = opportunistic()
    address2: str | None = opportunistic()
    postal_code: str | None = opportunistic()
    city: str | None = opportunistic()
    country_code: str | None = opportunistic()
    state_or_province: str | None = opportunistic()
    phone: str | None = opportunistic()
    company: str | None = opportunistic()


class Person(AnswerModel):
    """A customer or a subscriber: the id and the e-mail (the contact's key) are required."""

    id: int
    email: str
    first_name: str | None = opportunistic()
    last_name: str | None = opportunistic()
    date_modified: BcDate | None = opportunistic()


class Customer(Person):
    phone: str | None = opportunistic()
    company: str | None = opportunistic()
    date_created: BcDate | None = opportunistic()
    origin_channel_id: int | None = opportunistic(often_absent=True)
    addresses: list[CustomerAddress] | None = opportunistic(often_absent=True)


class Subscriber(Person):
    consents: list[str] | None = opportunistic(often_absent=True)


# -- orders ------------------------------------------------------------------------------------


class BillingAddress(AnswerModel):
    email: str | None = opportunistic()
    first_name: str | None = opportunistic()
    last_name: str | None = opportunistic()
    phone: str | None = opportunistic()
    company: str | None = opportunistic()
    street_1: str | None = opportunistic()
    street_2: str | None = opportunistic()
    zip: str | None = opportunistic()
    city: str | None = opportunistic()
    state: str | None = opportunistic()
    country_iso2: str | None = opportunistic()


class OrderProduct(AnswerModel):
    """`GET /v2/orders/{id}/products`, and a consignment's expanded line item."""

    id: int
    product_id: int | None = opportunistic()
    variant_id: int | None = opportunistic(often_absent=True)
    sku: str | None = opportunistic()
    name: str | None = opportunistic()
    quantity: int | None = opportunistic()
    parent_order_product_id: int | None = opportunistic(often_absent=True)
    is_bundled_product: bool | None = opportunistic(often_absent=True)


class ResourceLink(AnswerModel):
    """What /v2 sends instead of a sub-resource it did not expand."""

    url: str
    resource: str


class ConsignmentGroup(AnswerModel):
    # Unreadable line items drop the whole `consignments`: the order's products are then read apart.
    line_items: list[OrderProduct | ResourceLink] | ResourceLink | None = None
    shipping_method: str | None = opportunistic(often_absent=True)
    pickup_method_display_name: str | None = opportunistic(often_absent=True)


class EmailConsignments(AnswerModel):
    gift_certificates: list[ConsignmentGroup] | None = None


class Consignments(AnswerModel):
    shipping: list[ConsignmentGroup] | None = None
    pickups: list[ConsignmentGroup] | None = None
    downloads: list[ConsignmentGroup] | None = None
    email: EmailConsignments | None = None  # what the mapping reads of it, declared for `Declared` pages


class Order(AnswerModel):
    """`GET /v2/orders/{id}` and the `/v2/orders` list, with `include=consignments.line_items`."""

    id: int
    status_id: int
    date_created: BcDate
    date_modified: BcDate | None = opportunistic()
    customer_id: int | None = opportunistic()
    channel_id: int | None = opportunistic(often_absent=True)
    cart_id: str | None = opportunistic(often_absent=True)
    billing_address: BillingAddress | None = opportunistic()
    total_inc_tax: Money | None = opportunistic()
    refunded_amount: Money | None = opportunistic()
    currency_code: str | None = opportunistic()
    customer_locale: str | None = opportunistic(often_absent=True)
    customer_message: str | None = opportunistic()
    payment_method: str | None = opportunistic()
    is_email_opt_in: bool | None = opportunistic(often_absent=True)
    consignments: list[Consignments] | Consignments | ResourceLink | None = opportunistic(often_absent=True)


class OrderStatus(NamedItem):
    """One row of `/v2/order_statuses`."""


class OrderCount(AnswerModel):
    """`GET /v2/orders/count`."""

    count: int | None = opportunistic()


class RefundItem(AnswerModel):
    item_id: int | None = opportunistic()
    item_type: str | None = opportunistic()


class Refund(AnswerModel):
    id: int
    order_id: int
    total_amount: Money | None = opportunistic()
    created: BcDate | None = opportunistic()
    items: list[RefundItem] | None = opportunistic()


# -- carts -------------------------------------------------------------------------------------


class CartItem(AnswerModel):
    id: str | None = opportunistic()
    product_id: int | None = opportunistic()
    variant_id: int | None = opportunistic()
    sku: str | None = opportunistic()
    name: str | None = opportunistic()
    quantity: int | None = opportunistic()
    parent_id: int | None = opportunistic(often_absent=True)


class CartLineItems(AnswerModel):
    physical_items: list[CartItem] | None = opportunistic(often_absent=True)
    digital_items: list[CartItem] | None = opportunistic(often_absent=True)
    custom_items: list[CartItem] | None = opportunistic(often_absent=True)


class CartCurrency(AnswerModel):
    code: str | None = opportunistic()


class CartRedirectUrls(AnswerModel):
    cart_url: str | None = opportunistic()


class Cart(AnswerModel):
    """`GET /v3/carts/{id}?include=redirect_urls`."""

    id: str
    customer_id: int | None = opportunistic()
    email: str | None = opportunistic(often_absent=True)
    channel_id: int | None = opportunistic()
    cart_amount: Money | None = opportunistic()
    base_amount: Money | None = opportunistic()
    currency: CartCurrency | None = opportunistic()
    locale: str | None = opportunistic(often_absent=True)
    redirect_urls: CartRedirectUrls | None = opportunistic(often_absent=True)
    line_items: CartLineItems | None = opportunistic()


# -- hooks and scripts -------------------------------------------------------------------------


class Hook(AnswerModel):
    id: int
    scope: str | None = opportunistic()
    destination: str | None = opportunistic()
    is_active: bool | None = opportunistic()
    headers: dict[str, str] | None = opportunistic(often_absent=True)


class Script(AnswerModel):
    uuid: str
    name: str | None = opportunistic()
    channel_id: int | None = opportunistic()
    html: str | None = opportunistic(often_absent=True)
    consent_category: str | None = opportunistic(often_absent=True)


# -- envelopes ---------------------------------------------------------------------------------


class V3Pagination(AnswerModel):
    """Page numbers on most lists; `/v3/sites` says `offset`, `limit` and `total_items` instead."""

    total: int | None = opportunistic(often_absent=True)
    current_page: int | None = opportunistic(often_absent=True)
    total_pages: int | None = opportunistic(often_absent=True)
    total_items: int | None = opportunistic(often_absent=True)

    def page_count(self, limit: int) -> int | None:
        """How many pages the list has, when the answer says."""
        if self.total_pages is not None:
            return self.total_pages
        if self.total_items is not None and limit > 0:
            return -(-self.total_items // limit)
        return None


class V3CursorLinks(AnswerModel):
    next: str | None = opportunistic(often_absent=True)


class V3CursorPagination(AnswerModel):
    end_cursor: str | None = opportunistic()
    links: V3CursorLinks | None = opportunistic(often_absent=True)


class V3Meta(AnswerModel):
    pagination: V3Pagination | None = opportunistic(often_absent=True)
    cursor_pagination: V3CursorPagination | None = opportunistic(often_absent=True)


class V3List(AnswerModel, Generic[M]):
    """A `/v3` list answer: `data` (required: without it nothing was read) and paging in `meta`."""

    data: list[M]
    meta: V3Meta | None = opportunistic()


class V3One(AnswerModel, Generic[M]):
    """A `/v3` single-object answer (a read, or what a create or update made)."""

    data: M


# What the items of each list the product pages through are; anything else is read as plain objects.
LIST_ITEMS: dict[str, type[AnswerModel]] = {
    "/v2/orders": Order,
    "/v2/order_statuses": OrderStatus,
    "/v3/channels": Channel,
    "/v3/sites": Site,
    "/v3/customers": Customer,
    "/v3/customers/subscribers": Subscriber,
    "/v3/orders/payment_actions/refunds": Refund,
    "/v3/hooks": Hook,
    "/v3/content/scripts": Script,
}


def list_item_model(path: str) -> Any:
    """The model of one item of the list at `path` (`dict[str, Any]` for a list not modelled)."""
    return LIST_ITEMS.get(path, dict[str, Any])
