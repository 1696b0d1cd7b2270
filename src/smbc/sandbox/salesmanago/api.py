"""The fake's API v2 and v3 methods: one function per path, each taking the parsed body.

Failures use the real envelopes: v2 `{"success": false, "message": [...]}` (HTTP 200, as the SDK
ignores status codes; whether the real API uses non-200 codes is UNCONFIRMED), v3
`{"messages": [...], "reasonCode": n}` with a 4xx status.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from smbc.sandbox.salesmanago import rules
from smbc.sandbox.salesmanago.state import Account, SalesmanagoState, SandboxError

USER_NOT_AUTHENTICATED = "User not authenticated"
NOT_AUTHENTICATED = "Not authenticated"
TWO_FACTOR_REQUIRED = (
    "Two-factor authentication is enabled for this user: log in with API credentials "
    "(Integration Center → API) instead of the password"
)  # UNCONFIRMED wording: the real API's answer for 2FA users is not documented.


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    client_id: str | None = None


def ok(client_id: str | None = None, **fields: Any) -> Reply:
    return Reply(200, {"success": True, "message": [], **fields}, client_id=client_id)


def refused(*messages: str, status: int = 200, client_id: str | None = None) -> Reply:
    return Reply(status, {"success": False, "message": list(messages)}, client_id=client_id)


def v3_error(status: int, reason_code: int, *messages: str, client_id: str | None = None) -> Reply:
    return Reply(status, {"messages": list(messages), "reasonCode": reason_code}, client_id=client_id)


AuthedHandler = Callable[["SalesmanagoApi", Account, dict[str, Any], str], Reply]


class SalesmanagoApi:
    def __init__(self, state: SalesmanagoState) -> None:
        self.state = state

    def handle(
        self, path: str, body: Any, headers: dict[str, str], base_url: str, reached_at: str | None = None
    ) -> Reply:
        """Answer one API call. `base_url` is the fake's public address (the login `endpoint`);
        `reached_at` the address this request came to (for accounts on their own server)."""
        if path.startswith("/v3/"):
            handler = V3_METHODS.get(path)
            if handler is None:
                return v3_error(404, 16, f"Unknown method {path}")
            if not isinstance(body, dict):
                return v3_error(400, 14, "Specified json is not valid")
            return handler(self, body, headers)
        if not isinstance(body, dict):
            return refused("Specified json is not valid", status=400)
        self.state.apply_due_batches()
        public = PUBLIC_METHODS.get(path)
        if public is not None:
            return public(self, body, base_url, reached_at or base_url)
        handler = AUTHED_METHODS.get(path)
        if handler is None:
            return refused(f"Unknown method {path}", status=404)
        account, failure = self._authenticate(body, reached_at or base_url)
        if failure is not None:
            return failure
        assert account is not None
        try:
            reply = handler(self, account, body, path)
        except SandboxError as exc:
            return refused(*exc.messages, client_id=account.client_id)
        reply.client_id = account.client_id
        return reply

    # -- authentication -----------------------------------------------------------------------------

    def _authenticate(self, body: dict[str, Any], reached_at: str) -> tuple[Account | None, Reply | None]:
        client_id, api_key, sha = body.get("clientId"), body.get("apiKey"), body.get("sha")
        account = self.state.accounts.get(client_id) if isinstance(client_id, str) else None
        cid = account.client_id if account else None
        errors = rules.request_time_errors(body)
        if errors:
            return None, refused(*errors, client_id=cid)
        if account is None or not isinstance(api_key, str) or not api_key or not isinstance(sha, str):
            return None, refused(USER_NOT_AUTHENTICATED, client_id=cid)
        issued = account.issued_shas.get(api_key)
        valid = rules.same_secret(
            sha, rules.expected_sha(api_key, account.client_id, account.api_secret)
        ) or (issued is not None and rules.same_secret(sha, issued))
        # An account lives on one app server: another server does not know it.
        elsewhere = account.endpoint and account.endpoint != reached_at
        if not valid or account.revoked or elsewhere:
            return None, refused(USER_NOT_AUTHENTICATED, client_id=cid)
        if not account.active:
            return None, refused(NOT_AUTHENTICATED, client_id=cid)
        return account, None

    # -- login (no auth block) ----------------------------------------------------------------------

    def login_token(self, body: dict[str, Any], base_url: str, reached_at: str) -> Reply:
        username, password = body.get("username"), body.get("password")
        if not username or not password:
            return refused("username and password are required")
        account = self.state.account_by_email(username)
        if account is None or not rules.same_secret(password, account.password) or account.revoked:
            return refused(USER_NOT_AUTHENTICATED, client_id=account.client_id if account else None)
        if account.two_factor:
            return refused(TWO_FACTOR_REQUIRED, client_id=account.client_id)
        token = self.state.issue_login_token(account)
        return ok(account.client_id, token=token, endpoint=account.endpoint or base_url, smapp=account.smapp)

    def account_integration(self, body: dict[str, Any], base_url: str, reached_at: str) -> Reply:
        token, api_key = body.get("token"), body.get("apiKey")
        client_id = self.state.login_tokens.get(token) if isinstance(token, str) else None
        account = self.state.accounts.get(client_id) if client_id else None
        if account is None or account.revoked or (account.endpoint and account.endpoint != reached_at):
            return refused(USER_NOT_AUTHENTICATED, client_id=client_id)
        if not isinstance(api_key, str) or not api_key.strip():
            return refused("apiKey is required", client_id=client_id)
        # The server signs the caller's apiKey for it: the plugin never learns apiSecret.
        sha = rules.expected_sha(api_key, account.client_id, account.api_secret)
        with self.state.lock:
            account.issued_shas[api_key] = sha
        return ok(account.client_id, shortId=account.client_id, sha1=sha)

    # -- accounts and owners ------------------------------------------------------------------------

    def list_users(self, account: Account, body: dict[str, Any], path: str) -> Reply:
        if not body.get("owner"):
            raise SandboxError("owner is required")
        return ok(users=list(account.owners))

    # -- contacts -----------------------------------------------------------------------------------

    def contact_upsert(self, account: Account, body: dict[str, Any], path: str) -> Reply:
        owner = _owner(account, body)
        errors = rules.contact_upsert_errors(body)
        if errors:
            raise SandboxError(*errors)
        contact = self.state.upsert_contact(account, body, owner)
        return ok(contactId=contact["contactId"])

    def contact_batch_upsert(self, account: Account, body: dict[str, Any], path: str) -> Reply:
        items = body.get("upsertDetails")
        if not isinstance(items, list) or not items:
            raise SandboxError("upsertDetails must be a non-empty array")
        if len(items) > rules.BATCH_MAX:
            raise SandboxError(f"upsertDetails has {len(items)} contacts, at most {rules.BATCH_MAX} per call")
        default_owner = body.get("owner")
        errors: list[str] = []
        owners: list[str] = []
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                errors.append(f"[{i}] must be an object")
                owners.append("")
                continue
            owner = item.get("owner") or default_owner
            if not account.has_owner(owner):
                errors.append(f"[{i}] {_owner_message(owner)}")
            errors += [f"[{i}] {e}" for e in rules.contact_upsert_errors(item)]
            owners.append(owner or "")
        if errors:
            raise SandboxError(*errors)
        with self.state.lock:
            for i, item in enumerate(items):
                new_email = item.get("newEmail")
                renamed = new_email and new_email.lower() != item["contact"]["email"].lower()
                if renamed and self.state.find_contact(account, email=new_email):
                    errors.append(f"[{i}] Contact with email {new_email} already exists")
            if errors:
                raise SandboxError(*errors)
            upserts = [
                (
                    {
                        **item,
                        "useApiDoubleOptIn": item.get("useApiDoubleOptIn", body.get("useApiDoubleOptIn")),
                    },
                    owner,
                )
                for item, owner in zip(items, owners, strict=True)
            ]
            # Asynchronous, as the real method is: a request id now, the contacts a little later.
            request_id = self.state.queue_batch(account, upserts)
        return ok(requestId=request_id)

    def contact_basic(self, account: Account, body: dict[str, Any], path: str) -> Reply:
        _owner(account, body)
        emails = body.get("email")
        if not isinstance(emails, list) or not all(isinstance(e, str) for e in emails):
            raise SandboxError("email must be an array of email addresses")
        found = [self.state.find_contact(account, email=e) for e in emails]
        return ok(contacts=[basic_view(c) for c in found if c is not None])

    def contact_has(self, account: Account, body: dict[str, Any], path: str) -> Reply:
        _owner(account, body)
        email = body.get("email")
        if not rules.is_email(email):
            raise SandboxError("email is required")
        contact = self.state.find_contact(account, email=email)
        # UNCONFIRMED response shape (the documentation shows none): give both `result` and `contactId`.
        return ok(result=contact is not None, contactId=contact["contactId"] if contact else None)

    def contact_delete(self, account: Account, body: dict[str, Any], path: str) -> Reply:
        _owner(account, body)
        email = body.get("email")
        if not rules.is_email(email):
            raise SandboxError("email is required")
        if not self.state.delete_contact(account, email):
            raise SandboxError(f"Contact not found: {email}")
        return ok()

    # -- events -------------------------------------------------------------------------------------

    def event_add(self, account: Account, body: dict[str, Any], path: str) -> Reply:
        owner = _owner(account, body)
        errors = rules.contact_reference_errors(body) + rules.event_errors(
            body.get("contactEvent"), updating=False
        )
        if errors:
            raise SandboxError(*errors)
        with self.state.lock:
            contact = self._event_contact(account, body)
            event = self.state.add_event(account, contact, owner, body["contactEvent"], path)
        return ok(eventId=event["eventId"])

    def event_update(self, account: Account, body: dict[str, Any], path: str) -> Reply:
        _owner(account, body)
        errors = rules.event_errors(body.get("contactEvent"), updating=True)
        if errors:
            raise SandboxError(*errors)
        event = self.state.update_event(account, body["contactEvent"], path)
        return ok(eventId=event["eventId"])

    def event_batch_add(self, account: Account, body: dict[str, Any], path: str) -> Reply:
        owner = _owner(account, body)
        items = body.get("events")
        if not isinstance(items, list) or not items:
            raise SandboxError("events must be a non-empty array")
        if len(items) > rules.BATCH_MAX:
            raise SandboxError(f"events has {len(items)} events, at most {rules.BATCH_MAX} per call")
        errors: list[str] = []
        with self.state.lock:
            for i, item in enumerate(items):
                if not isinstance(item, dict):
                    errors.append(f"[{i}] must be an object")
                    continue
                item_errors = rules.contact_reference_errors(item)
                item_errors += rules.event_errors(item.get("contactEvent"), updating=False)
                errors += [f"[{i}] {e}" for e in item_errors]
            if errors:
                raise SandboxError(*errors)
            # An event for a contact SALESmanago does not have (yet) fails alone and is not stored;
            # the request as a whole still succeeds.
            failed: list[str] = []
            created = 0
            for item in items:
                contact = self.state.find_contact(
                    account, email=item.get("email"), contact_id=item.get("contactId")
                )
                if contact is None:
                    reference = str(item.get("email") or item.get("contactId"))
                    if reference not in failed:
                        failed.append(reference)
                    continue
                self.state.store_event(account, contact, owner, item["contactEvent"], path)
                created += 1
        return ok(failedContacts=failed, createdAmount=created, failedAmount=len(items) - created)

    def _event_contact(self, account: Account, body: dict[str, Any]) -> dict[str, Any]:
        contact = self.state.find_contact(account, email=body.get("email"), contact_id=body.get("contactId"))
        if contact is None:
            # UNCONFIRMED whether the real API creates the contact; refusing makes the app upsert first.
            raise SandboxError(f"Contact not found: {body.get('email') or body.get('contactId')}")
        return contact

    # -- combined contact + event -------------------------------------------------------------------

    def integration_upsert(self, account: Account, body: dict[str, Any], path: str) -> Reply:
        contact_request = body.get("contactUpsertRequest")
        event_request = body.get("addContactExtEventRequest")
        if contact_request is None and event_request is None:
            raise SandboxError("contactUpsertRequest or addContactExtEventRequest is required")
        errors: list[str] = []
        contact_owner = event_owner = ""
        if contact_request is not None:
            if not isinstance(contact_request, dict):
                raise SandboxError("contactUpsertRequest must be an object")
            contact_owner = contact_request.get("owner") or body.get("owner")
            if not account.has_owner(contact_owner):
                errors.append(f"contactUpsertRequest: {_owner_message(contact_owner)}")
            errors += [f"contactUpsertRequest: {e}" for e in rules.contact_upsert_errors(contact_request)]
        updating = False
        if event_request is not None:
            if not isinstance(event_request, dict):
                raise SandboxError("addContactExtEventRequest must be an object")
            event_owner = event_request.get("owner") or body.get("owner") or contact_owner
            if not account.has_owner(event_owner):
                errors.append(f"addContactExtEventRequest: {_owner_message(event_owner)}")
            event = event_request.get("contactEvent")
            updating = isinstance(event, dict) and bool(event.get("eventId"))
            event_errors = rules.event_errors(event, updating=updating)
            if not updating and contact_request is None:
                event_errors = rules.contact_reference_errors(event_request) + event_errors
            errors += [f"addContactExtEventRequest: {e}" for e in event_errors]
        if errors:
            raise SandboxError(*errors)
        fields: dict[str, Any] = {}
        with self.state.lock:
            if updating and event_request["contactEvent"]["eventId"] not in account.events:
                raise SandboxError(f"Event {event_request['contactEvent']['eventId']} not found")
            if event_request is not None and not updating and contact_request is None:
                self._event_contact(account, event_request)  # refuse before changing anything
            if contact_request is not None:
                contact = self.state.upsert_contact(account, contact_request, contact_owner)
                fields["contactId"] = contact["contactId"]
            if event_request is not None:
                event = event_request["contactEvent"]
                if updating:
                    fields["eventId"] = self.state.update_event(account, event, path)["eventId"]
                else:
                    target = (
                        contact
                        if contact_request is not None
                        else self._event_contact(account, event_request)
                    )
                    fields["eventId"] = self.state.add_event(account, target, event_owner, event, path)[
                        "eventId"
                    ]
        return ok(**fields)

    # -- API v3 -------------------------------------------------------------------------------------

    def v3_auth_create(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        missing = [name for name in ("email", "password", "keyName", "expiry") if not body.get(name)]
        if missing:
            return v3_error(400, 13, *(f"{name}|is required" for name in missing))
        account = self.state.account_by_email(body["email"])
        cid = account.client_id if account else None
        if account is None or not rules.same_secret(body["password"], account.password) or account.revoked:
            return v3_error(401, 10, USER_NOT_AUTHENTICATED, client_id=cid)
        if account.two_factor:
            return v3_error(401, 10, TWO_FACTOR_REQUIRED, client_id=cid)
        if not account.active:
            return v3_error(401, 10, NOT_AUTHENTICATED, client_id=cid)
        if body["expiry"] not in rules.V3_EXPIRY:
            return v3_error(
                400, 18, f"expiry|must be one of {', '.join(sorted(rules.V3_EXPIRY))}", client_id=cid
            )
        endpoint = body.get("endpoint")
        if endpoint is not None and (not isinstance(endpoint, str) or "://" in endpoint or "/" in endpoint):
            return v3_error(
                400,
                18,
                "endpoint|must be a host name without scheme, e.g. app2.salesmanago.pl",
                client_id=cid,
            )
        key = secrets.token_hex(20)
        with self.state.lock:
            account.v3_keys[key] = {
                "apiKey": key,
                "keyName": body["keyName"],
                "expiry": body["expiry"],
                "endpoint": endpoint,
                "webhookUrl": body.get("webhookUrl"),
                "createdOn": self.state.now_ms(),
            }
        return Reply(200, {"apiKey": key}, client_id=cid)

    def v3_auth_revoke(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        account = self.state.account_by_v3_key(headers.get("api-key"))
        if account is None:
            return v3_error(401, 10, "Invalid API key")
        if account.revoked:
            return v3_error(401, 10, USER_NOT_AUTHENTICATED, client_id=account.client_id)
        key = body.get("apiKey")
        if not key:
            return v3_error(400, 13, "apiKey|is required", client_id=account.client_id)
        with self.state.lock:
            meta = account.v3_keys.pop(key, None) if isinstance(key, str) else None
        if meta is None:
            return v3_error(400, 16, "apiKey|unknown API key", client_id=account.client_id)
        return Reply(200, {"apiKeyName": meta["keyName"]}, client_id=account.client_id)


def _owner_message(owner: object) -> str:
    if not owner:
        return "owner is required"
    return f"Owner {owner} is not a user of this account"


def _owner(account: Account, body: dict[str, Any]) -> str:
    owner = body.get("owner")
    if not account.has_owner(owner):
        raise SandboxError(_owner_message(owner))
    return owner


def basic_view(contact: dict[str, Any]) -> dict[str, Any]:
    """A contact as `/api/contact/basic` shows it."""
    birthday = contact.get("birthday") or ""
    return {
        "contactId": contact["contactId"],
        "name": contact.get("name"),
        "email": contact["email"],
        "phone": contact.get("phone"),
        "fax": contact.get("fax"),
        "company": contact.get("company"),
        "externalId": contact.get("externalId"),
        "state": contact.get("state"),
        "score": 0,
        "optedOut": not contact["optedIn"],
        "optedOutPhone": not contact["phoneOptedIn"],
        "deleted": False,
        "invalid": False,
        "address": copy.deepcopy(contact.get("address") or {}),
        "birthdayYear": int(birthday[:4]) if birthday else None,
        "birthdayMonth": int(birthday[4:6]) if birthday else None,
        "birthdayDay": int(birthday[6:8]) if birthday else None,
        "createdOn": contact["createdOn"],
        "modifiedOn": contact["modifiedOn"],
        "lastVisit": None,
    }


PUBLIC_METHODS: dict[str, Callable[[SalesmanagoApi, dict[str, Any], str, str], Reply]] = {
    "/api/authorization/token": SalesmanagoApi.login_token,
    "/api/account/integration": SalesmanagoApi.account_integration,
}
AUTHED_METHODS: dict[str, AuthedHandler] = {
    "/api/user/listByClient": SalesmanagoApi.list_users,
    "/api/contact/upsert": SalesmanagoApi.contact_upsert,
    "/api/contact/batchupsertv2": SalesmanagoApi.contact_batch_upsert,
    "/api/contact/basic": SalesmanagoApi.contact_basic,
    "/api/contact/hasContact": SalesmanagoApi.contact_has,
    "/api/contact/delete": SalesmanagoApi.contact_delete,
    "/api/integration/upsert": SalesmanagoApi.integration_upsert,
    # The v1 paths take the same bodies as the v2 ones.
    "/api/contact/addContactExtEvent": SalesmanagoApi.event_add,
    "/api/contact/updateContactExtEvent": SalesmanagoApi.event_update,
    "/api/v2/contact/addContactExtEvent": SalesmanagoApi.event_add,
    "/api/v2/contact/updateContactExtEvent": SalesmanagoApi.event_update,
    "/api/v2/contact/addBatchContactExtEvent": SalesmanagoApi.event_batch_add,
}
V3_METHODS: dict[str, Callable[[SalesmanagoApi, dict[str, Any], dict[str, str]], Reply]] = {
    "/v3/auth/create": SalesmanagoApi.v3_auth_create,
    "/v3/auth/revoke": SalesmanagoApi.v3_auth_revoke,
}
