"""What the product reads from each SALESmanago answer: one model per kind of answer, with exactly
the fields read (`smbc.core.answers`: a required field missing or mistyped makes the call `invalid`,
an opportunistic one falls back with a warning naming the call and the field).

The v2 envelope (`success`, `message`) is judged by the client's outcome table before a model is
read; these models are what a successful answer must, or may, carry besides."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any

from pydantic import BeforeValidator, StringConstraints

from smbc.core.answers import AnswerModel, opportunistic


def _number_as_text(value: Any) -> Any:
    """An id sent as a JSON number is still that id (bools are not ids)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


# A non-empty identifier or token: a string, or a number taken as its text.
Identifier = Annotated[
    str, BeforeValidator(_number_as_text), StringConstraints(strip_whitespace=True, min_length=1)
]


@lru_cache(maxsize=128)  # asked at every call; a model's fields are fixed
def required_fields(model: type[AnswerModel]) -> tuple[str, ...]:
    """The fields an answer must carry: the outcome table names the missing ones."""
    return tuple(name for name, spec in model.model_fields.items() if spec.is_required())


class NothingRead(AnswerModel):
    """An answer whose success is all the product needs (delete a contact, revoke a v3 key)."""


# -- login ----------------------------------------------------------------------------------------


class LoginToken(AnswerModel):
    """/api/authorization/token: the token, the account's own app host, its monitoring id."""

    token: Identifier
    endpoint: str | None = opportunistic()
    smapp: int | str | None = opportunistic()


class IntegrationKeys(AnswerModel):
    """/api/account/integration: the client id and the sha the server computed for our apiKey."""

    shortId: Identifier
    sha1: Identifier


class ApiKeyCreated(AnswerModel):
    """/v3/auth/create."""

    apiKey: Identifier


class Owners(AnswerModel):
    """/api/user/listByClient: the account's users, who may own contacts."""

    users: list[str]


# -- contacts -------------------------------------------------------------------------------------


class ContactUpserted(AnswerModel):
    """/api/contact/upsert."""

    contactId: Identifier


class ContactAndEventUpserted(AnswerModel):
    """/api/integration/upsert with both a contact and an event."""

    contactId: Identifier
    eventId: Identifier


class BatchAccepted(AnswerModel):
    """/api/contact/batchupsertv2 is asynchronous: a request id, never contact ids (the contacts
    appear later). The id is only recorded."""

    requestId: Identifier | None = opportunistic()


class BasicContact(AnswerModel):
    """One contact of /api/contact/basic, as the consent check reads it."""

    email: str | None = opportunistic()
    optedOut: bool | None = opportunistic()


class ContactsFound(AnswerModel):
    """/api/contact/basic: the contacts found (none found: an empty list)."""

    contacts: list[BasicContact] = opportunistic(default_factory=list)


class ContactLookup(AnswerModel):
    """/api/contact/hasContact. UNCONFIRMED which of `result` and `contactId` the answer carries:
    either one saying so means the contact exists."""

    result: bool | None = opportunistic()
    contactId: Identifier | None = opportunistic()


# -- events ---------------------------------------------------------------------------------------


class EventSaved(AnswerModel):
    """/api/v2/contact/addContactExtEvent and updateContactExtEvent."""

    eventId: Identifier


class BatchEventsAdded(AnswerModel):
    """/api/v2/contact/addBatchContactExtEvent: `success` is true even when some events failed;
    `failedContacts` names the contacts (as sent: e-mail or contact id) whose events were not stored."""

    failedContacts: list[Identifier] | None = opportunistic()
    createdAmount: int | None = opportunistic()
    failedAmount: int | None = opportunistic()
