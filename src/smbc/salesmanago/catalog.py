"""SALESmanago's Product Catalog (API v3): list and create catalogs, upsert products (at most 100 a
call), update quantities and prices.

Authentication is the account's v3 key in the `API-KEY` header. v3 answers report problems with a
`reasonCode`; `REASON_CODES` is the one table saying what each code means here: a warning, one
product refused, the whole request refused, or the key refused. A product refused in a batch is
reported with its reason and the others still go in."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Annotated, Any, Unpack

from pydantic import Field

from smbc.core.answers import AnswerError, AnswerModel, opportunistic, read_answer
from smbc.core.remote_calls import Outcome, RemoteCallError, Service
from smbc.salesmanago.answers import Identifier
from smbc.salesmanago.calls import TransportOptions, build_caller
from smbc.salesmanago.classification import classify

MAX_PRODUCTS_PER_CALL = 100
DEFAULT_V3_URL = "https://api.salesmanago.com"


class Severity(StrEnum):
    WARNING = "warning"  # the data went in (e.g. trimmed): nothing to do
    ITEM = "item"  # one product refused; the others of the call are not concerned
    REQUEST = "request"  # the whole call refused
    CREDENTIALS = "credentials"  # the v3 key is not valid


@dataclass(frozen=True)
class ReasonCode:
    meaning: str
    severity: Severity


# THE table: v3 reasonCode -> what it means and how much of the call it concerns. Codes 11-18 name
# the field before `|` in the message; with an item index `[i]` they concern that product only.
REASON_CODES: dict[int, ReasonCode] = {
    10: ReasonCode("API v3 key not valid", Severity.CREDENTIALS),
    11: ReasonCode("field over its limit", Severity.ITEM),
    12: ReasonCode("field trimmed", Severity.WARNING),
    13: ReasonCode("required field missing", Severity.ITEM),
    14: ReasonCode("wrong type", Severity.ITEM),
    15: ReasonCode("already exists", Severity.ITEM),
    16: ReasonCode("unknown identifier", Severity.ITEM),
    17: ReasonCode("required value is null", Severity.ITEM),
    18: ReasonCode("value does not match its pattern", Severity.ITEM),
    19: ReasonCode("over the resource limit", Severity.REQUEST),
}
_UNKNOWN_CODE = ReasonCode("refused", Severity.REQUEST)
_INDEX = re.compile(r"\[(\d+)\]")


def reason_code(code: object) -> ReasonCode:
    return REASON_CODES.get(code, _UNKNOWN_CODE) if isinstance(code, int) else _UNKNOWN_CODE


@dataclass(frozen=True)
class Problem:
    """One entry of a v3 answer's `problems` (or its whole-request `reasonCode`)."""

    code: int | None
    message: str
    index: int | None  # the product's position in the call, when the message names one

    @property
    def severity(self) -> Severity:
        kind = reason_code(self.code).severity
        if kind is Severity.ITEM and self.index is None:
            return Severity.REQUEST  # a product problem we cannot place concerns the whole call
        return kind

    @property
    def reason(self) -> str:
        """What the merchant reads: the field and SALESmanago's words."""
        field_name, _, rest = self.message.partition("|")
        described = reason_code(self.code).meaning
        if rest:
            return f"{_INDEX.sub('', field_name).strip(' .')}: {rest.strip()} ({described})"
        return f"{self.message.strip()} ({described})" if self.message.strip() else described


class ProblemEntry(AnswerModel):
    """One entry of a v3 answer's `problems`. Its code decides what it concerns, so a wrongly typed
    code is never replaced by a guess: the entry is then unreadable."""

    reasonCode: int | None = None
    message: str = opportunistic("")
    # The product's position when SALESmanago gives it apart; else the message's `[i]` says it.
    index: Annotated[int, Field(strict=True, ge=0)] | None = opportunistic(often_absent=True)


class V3Report(AnswerModel):
    """What a v3 answer reports as wrong: per-item `problems`, or a whole-request `reasonCode` with
    its `messages`. Nothing here is opportunistic: a report that cannot be read refuses the whole
    call, rather than counting as sent products SALESmanago may have refused."""

    problems: list[Any] | None = None
    reasonCode: int | None = None
    messages: list[Any] | str | None = None


V3_CALL = "SALESmanago API v3"


def problems_of(
    body: Any, *, call: str = V3_CALL, notes: list[str] | None = None, items: int | None = None
) -> list[Problem]:
    """Every problem in a v3 answer: `problems[]`, and the top-level `reasonCode` with `messages`.

    `items`: how many products the call sent; a problem placed outside them cannot be placed."""
    if not isinstance(body, dict):
        return []
    try:
        report = read_answer(V3Report, body, call=call, notes=notes)
    except AnswerError as unreadable:
        return [Problem(None, str(unreadable), None)]
    found = [_problem(item, call, notes, items) for item in report.problems or []]
    if report.reasonCode is not None or report.messages:
        messages = report.messages
        text = " ".join(str(m) for m in messages) if isinstance(messages, list) else str(messages or "")
        found.append(Problem(report.reasonCode, text, None))
    return found


def _problem(item: Any, call: str, notes: list[str] | None, items: int | None) -> Problem:
    """One entry of `problems`; an unreadable one names no product, so it concerns the whole call."""
    try:
        entry = read_answer(ProblemEntry, item, call=call, notes=notes)
    except AnswerError as unreadable:
        return Problem(None, str(unreadable), None)
    index = entry.index
    if index is None:
        match = _INDEX.search(entry.message)
        index = int(match.group(1)) if match else None
    if index is not None and items is not None and index >= items:
        index = None
    return Problem(entry.reasonCode, entry.message, index)


def classify_v3(
    status: int, body: Any, expected: tuple[str, ...], *, call: str = V3_CALL, items: int | None = None
) -> tuple[Outcome, str]:
    """The call's outcome: transport-level answers as every SALESmanago call; then by reasonCode.

    Problems of single products leave the call a SUCCESS: the caller reads them from the answer.
    `call` names the call in warnings; `items` is how many products it sent."""
    if status in (401, 403, 429) or status >= 500 or 300 <= status < 400 or not isinstance(body, dict):
        return classify(status, body, expected, api="v3")
    notes: list[str] = []
    problems = problems_of(body, call=call, notes=notes, items=items)
    blocking = [p for p in problems if p.severity in (Severity.REQUEST, Severity.CREDENTIALS)]
    message = "; ".join(p.reason for p in blocking) or "; ".join(p.reason for p in problems)
    if any(p.severity is Severity.CREDENTIALS for p in blocking):
        return Outcome.CREDENTIALS, message or "SALESmanago API v3 key is not valid"
    if blocking:
        return Outcome.INVALID, message
    items = [p for p in problems if p.severity is Severity.ITEM]
    if not 200 <= status < 300 and not items:
        return Outcome.INVALID, message or f"SALESmanago API v3 answered HTTP {status}"
    missing = [name for name in expected if body.get(name) in (None, "")]
    if missing:
        return Outcome.INVALID, f"SALESmanago API v3 answer without {', '.join(missing)}"
    return Outcome.SUCCESS, "; ".join(filter(None, [message, *notes]))


class CatalogGone(RemoteCallError):
    """SALESmanago does not know the catalog (deleted there): syncing to it cannot succeed."""


class CatalogEntry(AnswerModel):
    """One catalog of `catalogList` (SALESmanago names it `catalogName` or `name`)."""

    catalogId: Identifier
    catalogName: str | None = opportunistic(often_absent=True)
    name: str | None = opportunistic(often_absent=True)
    currency: str = opportunistic("")
    location: str = opportunistic("", often_absent=True)
    setAsDefault: bool = opportunistic(False, often_absent=True)


class CatalogList(AnswerModel):
    """`catalogList`. Required whole: the list decides whether a catalog was deleted in SALESmanago,
    and an unreadable one taken as empty would pause every storefront's sync."""

    catalogs: list[CatalogEntry]


class CatalogCreated(AnswerModel):
    catalogId: Identifier


@dataclass(frozen=True)
class Catalog:
    catalog_id: str
    name: str
    currency: str
    location: str
    set_as_default: bool

    @classmethod
    def from_answer(cls, item: CatalogEntry) -> Catalog:
        return cls(
            catalog_id=str(item.catalogId),
            name=item.catalogName or item.name or "",
            currency=item.currency,
            location=item.location,
            set_as_default=item.setAsDefault,
        )


@dataclass
class ProductsWritten:
    """What one or more product calls did: products accepted, and refused ones with the reason."""

    sent: int = 0
    refused: dict[str, str] = field(default_factory=dict)  # productId -> reason
    warnings: int = 0

    def add(self, other: ProductsWritten) -> None:
        self.sent += other.sent
        self.refused.update(other.refused)
        self.warnings += other.warnings


class CatalogApi:
    """One account's Product Catalog through API v3 (key in the `API-KEY` header, never logged)."""

    def __init__(
        self, v3_key: str, *, v3_url: str = DEFAULT_V3_URL, **transport: Unpack[TransportOptions]
    ) -> None:
        self.v3_url = v3_url.rstrip("/")
        self._key = v3_key
        # The v3 URL is the operator's setting, not one a merchant types: allowed as an origin.
        self._caller = build_caller(transport, secrets_to_hide=(v3_key,), origin=self.v3_url)

    def _call(
        self,
        path: str,
        body: dict[str, Any],
        *,
        method: str = "POST",
        answer: type[AnswerModel] | None = None,
    ) -> Any:
        products = body.get("products")
        sent = len(products) if isinstance(products, list) else None
        return self._caller.post(
            self.v3_url,
            path,
            body,
            (),
            api="v3",
            headers={"API-KEY": self._key},
            method=method,
            classifier=partial(classify_v3, call=f"{method} {path}", items=sent),
            answer=answer,
        )

    def catalogs(self) -> list[Catalog]:
        answer: CatalogList = self._call("/v3/product/catalogList", {}, method="GET", answer=CatalogList)
        return [Catalog.from_answer(c) for c in answer.catalogs]

    def create_catalog(self, name: str, currency: str, location: str, *, set_as_default: bool) -> str:
        body = {"name": name, "currency": currency, "location": location, "setAsDefault": set_as_default}
        created: CatalogCreated = self._call("/v3/product/catalogUpsert", body, answer=CatalogCreated)
        return str(created.catalogId)

    def upsert_products(self, catalog_id: str, products: Sequence[Mapping[str, Any]]) -> ProductsWritten:
        return self._write("/v3/product/upsert", catalog_id, products)

    def update_quantity(self, catalog_id: str, quantities: Sequence[Mapping[str, Any]]) -> ProductsWritten:
        return self._write("/v3/product/updateQuantity", catalog_id, quantities)

    def update_price(self, catalog_id: str, prices: Sequence[Mapping[str, Any]]) -> ProductsWritten:
        return self._write("/v3/product/updatePrice", catalog_id, prices)

    def _write(self, path: str, catalog_id: str, items: Sequence[Mapping[str, Any]]) -> ProductsWritten:
        result = ProductsWritten()
        for start in range(0, len(items), MAX_PRODUCTS_PER_CALL):
            result.add(
                self._write_chunk(path, catalog_id, list(items[start : start + MAX_PRODUCTS_PER_CALL]))
            )
        return result

    def _write_chunk(
        self, path: str, catalog_id: str, items: list[Mapping[str, Any]], *, again: bool = False
    ) -> ProductsWritten:
        try:
            answer = self._call(path, {"catalogId": catalog_id, "products": [dict(i) for i in items]})
        except RemoteCallError as exc:
            if exc.outcome is Outcome.INVALID and _names_catalog(exc.message):
                raise CatalogGone(
                    Outcome.INVALID, exc.message, service=Service.SALESMANAGO, status=exc.status
                ) from exc
            raise
        problems = problems_of(answer, call=f"POST {path}", items=len(items))
        refused: dict[str, str] = {}
        for problem in problems:
            if problem.severity is Severity.ITEM and problem.index is not None and problem.index < len(items):
                product_id = str(items[problem.index].get("productId"))
                refused.setdefault(product_id, problem.reason)
        warnings = sum(1 for p in problems if p.severity is Severity.WARNING)
        if refused and not again:
            # Whether SALESmanago stored the rest of a call with refused products is UNCONFIRMED:
            # send the rest once more (an upsert is idempotent), so they are in either way.
            rest = [i for i in items if str(i.get("productId")) not in refused]
            written = self._write_chunk(path, catalog_id, rest, again=True) if rest else ProductsWritten()
            written.refused.update(refused)
            written.warnings += warnings
            return written
        return ProductsWritten(sent=len(items) - len(refused), refused=refused, warnings=warnings)


def _names_catalog(message: str) -> bool:
    """An unknown-identifier refusal about the catalog itself (SALESmanago's wording is UNCONFIRMED:
    the service checks the catalog list before pausing anything)."""
    lowered = message.lower()
    return "catalog" in lowered and (
        "unknown identifier" in lowered or "not found" in lowered or "not exist" in lowered
    )
