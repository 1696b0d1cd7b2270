"""A fake SALESmanago (API v2 and v3) for tests, `smbc sandbox` and `smbc demo`.

It imports nothing from the product's SALESmanago client, so it can catch that client's mistakes.
"""

from smbc.sandbox.salesmanago.fake import FakeSalesmanago
from smbc.sandbox.salesmanago.state import Account

__all__ = ["Account", "FakeSalesmanago"]
