"""SALESmanago for BigCommerce."""

__version__ = "0.1.0"
