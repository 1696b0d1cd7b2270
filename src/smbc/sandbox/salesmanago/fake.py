"""`FakeSalesmanago`: the fake account server and the Python API tests use to look inside it."""

from __future__ import annotations

import copy
import secrets
from typing import Any

import httpx

from smbc.core.clock import Clock
from smbc.sandbox.salesmanago import callbacks
from smbc.sandbox.salesmanago.api import SalesmanagoApi
from smbc.sandbox.salesmanago.catalog import ProductCatalogs
from smbc.sandbox.salesmanago.faults import Faults
from smbc.sandbox.salesmanago.state import Account, SalesmanagoState

SECRET_KEYS = frozenset({"password", "sha", "sha1", "apiKey", "token", "apiSecret", "api-key"})
REDACTED = "[redacted]"


def redact(value: Any) -> Any:
    """A copy of a request or response body with every secret replaced by "[redacted]"."""
    if isinstance(value, dict):
        return {k: (REDACTED if k in SECRET_KEYS and v else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class FakeSalesmanago:
    """A SALESmanago account server in memory, with three ready accounts:

    NORMAL (merchant@sandbox.test), TWO_FACTOR (2fa@sandbox.test: password logins refused) and
    INACTIVE (inactive@sandbox.test: login works, then every call answers "Not authenticated").
    Passwords are all "sandbox-password".
    """

    PASSWORD = "sandbox-password"  # noqa: S105 - a published sandbox login

    def __init__(self, clock: Clock | None = None, *, seed: int | None = None) -> None:
        self.state = SalesmanagoState(clock)
        self.faults = Faults(seed=seed)
        self.api = SalesmanagoApi(self.state)
        self.catalogs = ProductCatalogs(self.state)  # the v3 Product Catalog methods and their state
        self.base_url = ""
        self.NORMAL = self._add_ready_account(
            "sbxnormal0001",
            "normal",
            ["merchant@sandbox.test", "sales@sandbox.test", "support@sandbox.test"],
            smapp=2,
        )
        self.TWO_FACTOR = self._add_ready_account(
            "sbx2fa000002", "2fa", ["2fa@sandbox.test", "team@sandbox.test"], smapp=3, two_factor=True
        )
        self.INACTIVE = self._add_ready_account(
            "sbxinactive3", "inactive", ["inactive@sandbox.test", "other@sandbox.test"], smapp=4, active=False
        )
        self.page_token = secrets.token_urlsafe(16)  # guards the /sandbox page's forms
        # Here, not at the top: the web module imports this one's redact().
        from smbc.sandbox.salesmanago.web import build_app

        self.app = build_app(self)

    def _add_ready_account(
        self, client_id: str, name: str, owners: list[str], smapp: int, **flags: bool
    ) -> Account:
        """An account whose login is its first owner, with the published password and secret."""
        return self.state.add_account(
            Account(
                client_id=client_id,
                api_secret=f"sandbox-api-secret-{name}",
                email=owners[0],
                password=self.PASSWORD,
                owners=owners,
                smapp=smapp,
                **flags,
            )
        )

    def bind(self, base_url: str) -> None:
        """The fake's public address: login answers it as `endpoint`."""
        self.base_url = base_url.rstrip("/")

    # -- looking inside -----------------------------------------------------------------------------

    def account(self, client_id: str) -> Account:
        return self.state.account(client_id)

    def contacts(self, client_id: str) -> list[dict[str, Any]]:
        account = self.account(client_id)
        self.state.apply_due_batches()
        with self.state.lock:
            return copy.deepcopy(list(account.contacts.values()))

    def contact(self, client_id: str, email: str) -> dict[str, Any] | None:
        self.state.apply_due_batches()
        contact = self.state.find_contact(self.account(client_id), email=email)
        return copy.deepcopy(contact)

    def deleted_contacts(self, client_id: str) -> list[dict[str, Any]]:
        account = self.account(client_id)
        with self.state.lock:
            return copy.deepcopy(account.deleted_contacts)

    def events(self, client_id: str, type: str | None = None) -> list[dict[str, Any]]:
        account = self.account(client_id)
        with self.state.lock:
            found = [e for e in account.events.values() if type is None or e["type"] == type]
            return copy.deepcopy(found)

    def event(self, client_id: str, event_id: str) -> dict[str, Any] | None:
        account = self.account(client_id)
        with self.state.lock:
            return copy.deepcopy(account.events.get(event_id))

    @property
    def calls(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return copy.deepcopy(self.state.calls)

    @property
    def monitoring_loads(self) -> list[dict[str, Any]]:
        """Every load of /static/sm.js and /dynamic/<clientId>/popups.js (path, referer, time)."""
        with self.state.lock:
            return copy.deepcopy(self.state.monitoring_loads)

    def confirmation_emails(self, client_id: str) -> list[dict[str, Any]]:
        account = self.account(client_id)
        with self.state.lock:
            return copy.deepcopy(account.confirmation_emails)

    def v3_keys(self, client_id: str) -> list[dict[str, Any]]:
        account = self.account(client_id)
        with self.state.lock:
            return copy.deepcopy(list(account.v3_keys.values()))

    def callbacks_sent(self, client_id: str) -> list[dict[str, Any]]:
        account = self.account(client_id)
        with self.state.lock:
            return copy.deepcopy(account.callbacks_sent)

    def pending_contacts(self, client_id: str) -> int:
        """Contacts accepted by `batchupsertv2` and not applied yet (their delay has not passed)."""
        self.state.apply_due_batches()
        return self.state.pending_contacts(client_id)

    # -- changing things ----------------------------------------------------------------------------

    @property
    def batch_delay_s(self) -> float:
        """How long after its answer a `batchupsertv2` batch is applied, on the fake's clock."""
        return self.state.batch_delay_s

    @batch_delay_s.setter
    def batch_delay_s(self, seconds: float) -> None:
        self.state.batch_delay_s = seconds

    def apply_pending_batches(self) -> int:
        """Apply every accepted `batchupsertv2` batch now, as if its delay had passed (for runs on the
        real clock); returns how many contacts were applied."""
        return self.state.apply_due_batches(all_now=True)

    def add_contact(
        self, client_id: str, email: str, opted_in: bool = True, *, owner: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A contact that already exists in SALESmanago (fields use the API names, e.g. name, tags)."""
        account = self.account(client_id)
        if "phone_opted_in" in fields:
            fields["phoneOptedIn"] = fields.pop("phone_opted_in")
        return self.state.add_contact(account, email, owner or account.email, optedIn=opted_in, **fields)

    def set_callback_urls(
        self, client_id: str, opt_in: str | None = None, opt_out: str | None = None
    ) -> None:
        account = self.account(client_id)
        checked_in = callbacks.check_callback_url(opt_in) if opt_in is not None else None
        checked_out = callbacks.check_callback_url(opt_out) if opt_out is not None else None
        with self.state.lock:
            if checked_in is not None:
                account.callback_opt_in = checked_in
            if checked_out is not None:
                account.callback_opt_out = checked_out

    def opt_in(self, client_id: str, email: str) -> httpx.Response | None:
        """Opt the contact in (as on its contact card) and call the opt-in callback, if one is set."""
        return self._change_opt_in(client_id, email, True)

    def opt_out(self, client_id: str, email: str) -> httpx.Response | None:
        return self._change_opt_in(client_id, email, False)

    def confirm_double_opt_in(self, client_id: str, email: str) -> httpx.Response | None:
        """The contact clicks the confirmation link: opted in, and the opt-in callback is called."""
        account = self.account(client_id)
        with self.state.lock:
            pending = any(
                m["email"].lower() == email.lower() and not m["confirmed"]
                for m in account.confirmation_emails
            )
        if not pending:
            raise KeyError(f"no unconfirmed double opt-in e-mail to {email!r} in account {client_id}")
        return self._change_opt_in(client_id, email, True)

    def _change_opt_in(self, client_id: str, email: str, opted_in: bool) -> httpx.Response | None:
        account = self.account(client_id)
        self.state.set_opt_in(account, email, opted_in)
        template = account.callback_opt_in if opted_in else account.callback_opt_out
        if not template:
            return None
        url = callbacks.callback_url(template, email)
        record: dict[str, Any] = {
            "kind": "opt-in" if opted_in else "opt-out",
            "email": email,
            "url": url,
            "time": self.state.now(),
            "status": None,
            "error": None,
        }
        try:
            response = callbacks.send_callback(url)
        except httpx.HTTPError as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"
            raise
        else:
            record["status"] = response.status_code
            return response
        finally:
            with self.state.lock:
                account.callbacks_sent.append(record)

    def set_account_endpoint(self, client_id: str, base_url: str) -> None:
        """Put the account on its own app server (another address serving this fake): logins started
        anywhere answer that address as `endpoint`, and API calls reaching any other address are refused."""
        account = self.account(client_id)
        with self.state.lock:
            account.endpoint = base_url.rstrip("/")

    def remove_owner(self, client_id: str, email: str) -> None:
        account = self.account(client_id)
        with self.state.lock:
            account.owners = [o for o in account.owners if o.lower() != email.lower()]

    def revoke_credentials(self, client_id: str) -> None:
        """From now on every call for this account answers "User not authenticated"."""
        account = self.account(client_id)
        with self.state.lock:
            account.revoked = True

    def restore_credentials(self, client_id: str) -> None:
        account = self.account(client_id)
        with self.state.lock:
            account.revoked = False

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        self.faults.fail_next(n, status)

    def restore(self) -> None:
        """Clear every fault and restore every account's credentials."""
        self.faults.reset()
        with self.state.lock:
            for account in self.state.accounts.values():
                account.revoked = False
