"""Fixtures for the sandbox tests (the fake BigCommerce harness lives in fake_bc_harness.py)."""

from fake_bc_harness import harness  # noqa: F401
