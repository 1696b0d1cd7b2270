"""The fake BigCommerce and fake SALESmanago, for tests, `smbc sandbox` and `smbc demo`.

Nothing here imports the product's bigcommerce/, salesmanago/, sync/ or web/ packages.
"""

from smbc.sandbox.runner import Sandbox

__all__ = ["Sandbox"]
