"""A fake SALESmanago (API v2 and v3) for tests, `smbc sandbox` and `smbc demo`.

It imports nothing from the product's SALESmanago client, so it can catch that client's mistakes.

    sm = FakeSalesmanago(clock=None)        # sm.app is the ASGI app; sm.bind("http://127.0.0.1:PORT")
    sm.NORMAL / sm.TWO_FACTOR / sm.INACTIVE  # accounts: .client_id .api_secret .email .password .owners
    sm.contacts(cid), sm.contact(cid, email), sm.events(cid, type=None), sm.event(cid, event_id)
    sm.calls, sm.confirmation_emails(cid), sm.v3_keys(cid), sm.callbacks_sent(cid), sm.monitoring_loads
    sm.add_contact(cid, email, opted_in=True, **api_fields); sm.confirm_double_opt_in(cid, email)
    sm.set_callback_urls(cid, opt_in=..., opt_out=...); sm.opt_in(cid, email); sm.opt_out(cid, email)
    sm.faults.latency_ms / .error_rate / .down; sm.fail_next(n, status); sm.restore()
    sm.revoke_credentials(cid); sm.restore_credentials(cid); sm.remove_owner(cid, email)
    sm.set_account_endpoint(cid, url)        # the account lives on another address serving this fake
    sm.batch_delay_s = 2.0                   # batchupsertv2 answers a requestId, applies its contacts later
    sm.pending_contacts(cid); sm.apply_pending_batches()  # ... or at once, as if the delay had passed
    sm.catalogs.catalogs(cid), .products(cid, catalog_id), .delete(cid, catalog_id), .max_catalogs = 5
                                             # the v3 Product Catalog (API-KEY from /v3/auth/create)

HTTP: the API under /api/... and /v3/..., the page at /sandbox, JSON at /sandbox/api/...
"""

from smbc.sandbox.salesmanago.fake import FakeSalesmanago
from smbc.sandbox.salesmanago.state import Account

__all__ = ["Account", "FakeSalesmanago"]
