"""The fake SALESmanago's Product Catalog (API v3): catalogs per account and their products.

Methods: `GET /v3/product/catalogList`, `POST /v3/product/catalogUpsert`, `/catalogDelete`, `/upsert`,
`/updateQuantity`, `/updatePrice`. Every call authenticates with an `API-KEY` header holding a key from
`/v3/auth/create`. Errors use the v3 envelopes: a whole request refused is
`{"messages": ["<field>|<text>"], "reasonCode": n}`; item problems are
`{"problems": [{"reasonCode": n, "message": "[i].<field>|<text>"}]}`. Reason codes: 10 bad API key,
11 over a limit, 12 trimmed (a warning: the item is stored), 13 required field missing, 14 wrong type,
15 already exists, 16 unknown identifier, 17 required value null, 18 pattern mismatch, 19 over the
resource limit.

Limits and required fields are not published: the fake's choices (below) are the strict side, so a
client that copes here copes with the real thing.
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smbc.sandbox.salesmanago.api import Reply, v3_error
from smbc.sandbox.salesmanago.state import Account, SalesmanagoState

Json = dict[str, Any]
MAX_PRODUCTS_PER_CALL = 100
# UNCONFIRMED: how many catalogs an account may have (`limits.max`); five is the small side.
DEFAULT_MAX_CATALOGS = 5
# Texts longer than this are trimmed (reasonCode 12). UNCONFIRMED for name, description, URLs, categories
# and custom details; the system-detail limits are the plugins' own.
TEXT_LIMITS: dict[str, int] = {
    "name": 255,
    "description": 2000,
    "productUrl": 2048,
    "mainImageUrl": 2048,
    "mainCategory": 255,
    "categoryExternalId": 255,
}
SYSTEM_DETAIL_LIMITS: dict[str, int] = {
    "brand": 255,
    "manufacturer": 100,
    "season": 40,
    "color": 40,
    "gender": 40,
}
SYSTEM_DETAIL_FLAGS = ("bestseller", "newProduct")
CUSTOM_DETAILS = tuple(f"detail{n}" for n in range(1, 6))
CUSTOM_DETAIL_LIMIT = 255
# UNCONFIRMED: a new product needs these; an existing one may be updated with any subset.
REQUIRED_FOR_NEW = ("name", "price")
NULLABLE = frozenset({"discountPrice", "description", "mainImageUrl", "categoryExternalId", *CUSTOM_DETAILS})
CURRENCY = re.compile(r"^[A-Z]{3}$")
# UNCONFIRMED: the plugins replace spaces in a new catalog's name with "_", so the fake refuses spaces.
CATALOG_NAME = re.compile(r"^\S{1,100}$")
PRODUCT_ID_LIMIT = 255
MAX_IMAGE_URLS = 20


@dataclass
class Catalog:
    catalog_id: str
    name: str
    currency: str
    location: str
    set_as_default: bool
    created_on: int
    products: dict[str, Json] = field(default_factory=dict)

    def public(self) -> Json:
        # `name`, as catalogUpsert takes it (a client should read `catalogName` too: both are in use).
        return {
            "catalogId": self.catalog_id,
            "name": self.name,
            "currency": self.currency,
            "location": self.location,
            "setAsDefault": self.set_as_default,
            "createdOn": self.created_on,
            "productsCount": len(self.products),
        }


class Refused(Exception):
    """The whole request is refused: `reasonCode` and message, with the HTTP status."""

    def __init__(self, reason_code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.reason_code = reason_code
        self.status = status


@dataclass
class ItemCheck:
    """What checking one product found: its problems (warnings included) and the cleaned fields."""

    index: int
    problems: list[Json] = field(default_factory=list)
    fields: Json = field(default_factory=dict)

    def problem(self, code: int, name: str, text: str) -> None:
        self.problems.append({"reasonCode": code, "message": f"[{self.index}].{name}|{text}"})

    @property
    def refused(self) -> bool:
        return any(p["reasonCode"] != 12 for p in self.problems)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(check: ItemCheck, name: str, value: object, limit: int, out: Json, key: str | None = None) -> None:
    """Keep a text under `key` (default: `name`, the field as problems name it), trimmed to `limit`."""
    if not isinstance(value, str):
        check.problem(14, name, "must be a string")
    elif len(value) > limit:
        check.problem(12, name, f"trimmed to {limit} characters")
        out[key or name] = value[:limit]
    else:
        out[key or name] = value


def _check_details(
    check: ItemCheck, name: str, value: object, limits: dict[str, int], flags: tuple[str, ...]
) -> None:
    if not isinstance(value, dict):
        check.problem(14, name, "must be an object")
        return
    out: Json = {}
    for key, detail in value.items():
        if key in flags:
            if not isinstance(detail, bool):
                check.problem(14, f"{name}.{key}", "must be a boolean")
            else:
                out[key] = detail
        elif key == "popularity":
            if not isinstance(detail, int) or isinstance(detail, bool):
                check.problem(14, f"{name}.{key}", "must be an integer")
            else:
                out[key] = detail
        elif key in limits:
            _text(check, f"{name}.{key}", detail, limits[key], out, key)
        else:
            check.problem(18, f"{name}.{key}", f"is not one of {', '.join([*limits, *flags])}")
    check.fields[name] = out


def check_product(index: int, item: object, existing: Json | None) -> ItemCheck:
    """Check one product of `/v3/product/upsert` (`existing`: the stored product with that id)."""
    check = ItemCheck(index)
    if not isinstance(item, dict):
        check.problem(14, "product", "must be an object")
        return check
    product_id = item.get("productId")
    if product_id is None:
        check.problem(13 if "productId" not in item else 17, "productId", "is required")
    elif not isinstance(product_id, str) or not product_id.strip():
        # UNCONFIRMED whether numbers are accepted: identifiers are strings in the product object.
        check.problem(14, "productId", "must be a non-empty string")
    elif len(product_id) > PRODUCT_ID_LIMIT:
        check.problem(11, "productId", f"is longer than {PRODUCT_ID_LIMIT} characters")
    out = check.fields
    for name in REQUIRED_FOR_NEW if existing is None else ():
        if name not in item:
            check.problem(13, name, "is required")
    for name, value in item.items():
        if name == "productId":
            out[name] = value
        elif value is None:
            if name not in NULLABLE:
                check.problem(17, name, "must not be null")
        elif name in TEXT_LIMITS:
            _text(check, name, value, TEXT_LIMITS[name], out)
        elif name in ("price", "discountPrice"):
            if not _is_number(value):
                check.problem(14, name, "must be a number")
            elif value < 0:
                check.problem(11, name, "must not be negative")
            else:
                out[name] = value
        elif name == "quantity":
            if not isinstance(value, int) or isinstance(value, bool):
                check.problem(14, name, "must be an integer")
            else:
                out[name] = value
        elif name in ("available", "active"):
            if not isinstance(value, bool):
                check.problem(14, name, "must be a boolean")
            else:
                out[name] = value
        elif name in ("categories", "imageUrls"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                check.problem(14, name, "must be a list of strings")
            elif name == "imageUrls" and len(value) > MAX_IMAGE_URLS:
                check.problem(11, name, f"has more than {MAX_IMAGE_URLS} URLs")
            else:
                out[name] = list(value)
        elif name == "systemDetails":
            _check_details(check, name, value, SYSTEM_DETAIL_LIMITS, SYSTEM_DETAIL_FLAGS)
        elif name == "customDetails":
            _check_details(check, name, value, dict.fromkeys(CUSTOM_DETAILS, CUSTOM_DETAIL_LIMIT), ())
        elif name == "setAsNull":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                check.problem(14, name, "must be a list of field names")
            elif set(value) - NULLABLE:
                check.problem(17, name, f"cannot clear {', '.join(sorted(set(value) - NULLABLE))}")
            else:
                out[name] = list(value)
        else:
            check.problem(18, name, "is not a field of a product")
    return check


def merged(existing: Json | None, fields: Json, now_ms: int) -> Json:
    """The stored product after an upsert: given fields replace, `setAsNull` clears, the rest stays."""
    product = copy.deepcopy(existing) if existing else {"createdOn": now_ms}
    cleared = fields.pop("setAsNull", [])
    for name, value in fields.items():
        if name in ("systemDetails", "customDetails"):
            product[name] = {**product.get(name, {}), **value}
        else:
            product[name] = value
    for name in cleared:
        if name in CUSTOM_DETAILS:
            product.get("customDetails", {}).pop(name, None)
        else:
            product.pop(name, None)
    product["modifiedOn"] = now_ms
    return product


class ProductCatalogs:
    """Catalogs per account (client id), and the v3 catalog methods."""

    def __init__(self, state: SalesmanagoState) -> None:
        self.state = state
        self.max_catalogs = DEFAULT_MAX_CATALOGS
        self._by_account: dict[str, dict[str, Catalog]] = {}

    # -- what tests and the sandbox page read --------------------------------------------------------

    def of(self, client_id: str) -> dict[str, Catalog]:
        with self.state.lock:
            return self._by_account.setdefault(client_id, {})

    def catalogs(self, client_id: str) -> list[Json]:
        with self.state.lock:
            return [c.public() for c in self.of(client_id).values()]

    def products(self, client_id: str, catalog_id: str) -> list[Json]:
        with self.state.lock:
            catalog = self.of(client_id).get(catalog_id)
            return copy.deepcopy(list(catalog.products.values())) if catalog else []

    def delete(self, client_id: str, catalog_id: str) -> bool:
        """Delete a catalog as the merchant does in SALESmanago (its products go with it)."""
        with self.state.lock:
            return self.of(client_id).pop(catalog_id, None) is not None

    # -- the API ------------------------------------------------------------------------------------

    def handle(self, path: str, body: Any, headers: dict[str, str]) -> Reply:
        method = METHODS[path]
        account = self.state.account_by_v3_key(headers.get("api-key"))
        if account is None or account.revoked or not account.active:
            cid = account.client_id if account else None
            return v3_error(401, 10, "API-KEY|is missing, unknown or revoked", client_id=cid)
        if not isinstance(body, dict):
            return v3_error(400, 14, "body|must be a JSON object", client_id=account.client_id)
        try:
            with self.state.lock:
                reply = method(self, account, body)
        except Refused as exc:
            return v3_error(exc.status, exc.reason_code, str(exc), client_id=account.client_id)
        reply.client_id = account.client_id
        return reply

    def _catalog(self, account: Account, body: Json) -> Catalog:
        catalog_id = body.get("catalogId")
        if catalog_id is None:
            raise Refused(13, "catalogId|is required")
        catalog = self.of(account.client_id).get(catalog_id) if isinstance(catalog_id, str) else None
        if catalog is None:
            raise Refused(16, "catalogId|Unknown identifier")
        return catalog

    def catalog_list(self, account: Account, body: Json) -> Reply:
        catalogs = [c.public() for c in self.of(account.client_id).values()]
        return Reply(200, {"catalogs": catalogs, "limits": {"max": self.max_catalogs}})

    def catalog_upsert(self, account: Account, body: Json) -> Reply:
        catalogs = self.of(account.client_id)
        existing = self._catalog(account, body) if body.get("catalogId") is not None else None
        name, currency, location = body.get("name"), body.get("currency"), body.get("location")
        for field_name, value in (("name", name), ("currency", currency), ("location", location)):
            if value is None and existing is None:
                raise Refused(13, f"{field_name}|is required")
            if value is not None and not isinstance(value, str):
                raise Refused(14, f"{field_name}|must be a string")
        if name is not None and not CATALOG_NAME.match(name):
            raise Refused(18, "name|must be 1 to 100 characters without spaces")
        if currency is not None and not CURRENCY.match(currency):
            raise Refused(18, "currency|must be an ISO 4217 code such as USD")
        set_as_default = body.get("setAsDefault", existing.set_as_default if existing else False)
        if not isinstance(set_as_default, bool):
            raise Refused(14, "setAsDefault|must be a boolean")
        if name is not None and any(c.name == name and c is not existing for c in catalogs.values()):
            raise Refused(15, f"name|a catalog named {name} already exists")
        if existing is None:
            if len(catalogs) >= self.max_catalogs:
                raise Refused(19, f"catalogs|this account may have at most {self.max_catalogs} catalogs")
            existing = Catalog(str(uuid.uuid4()), "", "", "", False, self.state.now_ms())
            catalogs[existing.catalog_id] = existing
        existing.name = name if name is not None else existing.name
        existing.currency = currency if currency is not None else existing.currency
        existing.location = location if location is not None else existing.location
        if set_as_default:
            for other in catalogs.values():
                other.set_as_default = False
        existing.set_as_default = set_as_default
        return Reply(200, {"catalogId": existing.catalog_id})

    def catalog_delete(self, account: Account, body: Json) -> Reply:
        catalog = self._catalog(account, body)
        del self.of(account.client_id)[catalog.catalog_id]
        return Reply(200, {"catalogId": catalog.catalog_id})

    def _items(self, body: Json) -> list[Any]:
        items = body.get("products")
        if items is None:
            raise Refused(13, "products|is required")
        if not isinstance(items, list):
            raise Refused(14, "products|must be a list")
        if not items:
            raise Refused(13, "products|must not be empty")
        if len(items) > MAX_PRODUCTS_PER_CALL:
            raise Refused(19, f"products|at most {MAX_PRODUCTS_PER_CALL} products in one request")
        return items

    @staticmethod
    def _answer(checks: list[ItemCheck], apply: Callable[[], None]) -> Reply:
        """All or nothing: an item refused refuses the request (400, every problem listed), since
        whether the real API keeps the other items is UNCONFIRMED; warnings alone store everything."""
        problems = [p for check in checks for p in check.problems]
        if any(check.refused for check in checks):
            return Reply(400, {"problems": problems})
        apply()
        answer: Json = {"requestId": str(uuid.uuid4())}
        if problems:
            answer["problems"] = problems
        return Reply(200, answer)

    def product_upsert(self, account: Account, body: Json) -> Reply:
        catalog = self._catalog(account, body)
        items = self._items(body)
        checks = []
        for index, item in enumerate(items):
            product_id = item.get("productId") if isinstance(item, dict) else None
            existing = catalog.products.get(product_id) if isinstance(product_id, str) else None
            checks.append(check_product(index, item, existing))
        ids = [c.fields.get("productId") for c in checks]
        for check, product_id in zip(checks, ids, strict=True):
            if product_id is not None and ids.count(product_id) > 1:
                check.problem(15, "productId", f"{product_id} appears more than once in this request")

        def apply() -> None:
            now = self.state.now_ms()
            for check in checks:
                product_id = check.fields["productId"]
                catalog.products[product_id] = merged(catalog.products.get(product_id), check.fields, now)

        return self._answer(checks, apply)

    def _update(self, account: Account, body: Json, numbers: dict[str, bool]) -> Reply:
        """updateQuantity / updatePrice: known products only; `numbers` maps each field to whether it is
        required."""
        catalog = self._catalog(account, body)
        checks = []
        for index, item in enumerate(self._items(body)):
            check = ItemCheck(index)
            checks.append(check)
            if not isinstance(item, dict):
                check.problem(14, "product", "must be an object")
                continue
            product_id = item.get("productId")
            if not isinstance(product_id, str) or product_id not in catalog.products:
                check.problem(16, "productId", "Unknown identifier")
            check.fields["productId"] = product_id
            for name, required in numbers.items():
                value = item.get(name)
                if name not in item:
                    if required:
                        check.problem(13, name, "is required")
                elif value is None and name == "discountPrice":
                    check.fields.setdefault("setAsNull", []).append(name)
                elif name == "quantity" and (not isinstance(value, int) or isinstance(value, bool)):
                    check.problem(14, name, "must be an integer")
                elif not _is_number(value):
                    check.problem(14, name, "must be a number")
                elif value < 0:
                    check.problem(11, name, "must not be negative")
                else:
                    check.fields[name] = value
            for name in set(item) - {"productId", *numbers}:
                check.problem(18, name, "is not a field of this method")

        def apply() -> None:
            now = self.state.now_ms()
            for check in checks:
                product_id = check.fields["productId"]
                catalog.products[product_id] = merged(catalog.products[product_id], check.fields, now)

        return self._answer(checks, apply)

    def update_quantity(self, account: Account, body: Json) -> Reply:
        return self._update(account, body, {"quantity": True})

    def update_price(self, account: Account, body: Json) -> Reply:
        return self._update(account, body, {"price": True, "discountPrice": False})


METHODS: dict[str, Callable[[ProductCatalogs, Account, Json], Reply]] = {
    "/v3/product/catalogList": ProductCatalogs.catalog_list,
    "/v3/product/catalogUpsert": ProductCatalogs.catalog_upsert,
    "/v3/product/catalogDelete": ProductCatalogs.catalog_delete,
    "/v3/product/upsert": ProductCatalogs.product_upsert,
    "/v3/product/updateQuantity": ProductCatalogs.update_quantity,
    "/v3/product/updatePrice": ProductCatalogs.update_price,
}
# catalogList is read with GET; every other method is a POST.
GET_METHODS = frozenset({"/v3/product/catalogList"})
