"""Browser fixtures (Debian's Chromium through Playwright, as merchants' browsers behave; see
browser_support.py and ../shared/reference/browser-testing.md):

- `chromium` (module): `chromium.launch(block_third_party_cookies=True, width=1440, height=900)`
  returns a BrowserContext on a fresh profile; every context is closed at the end of the module.
- `browser_context`: one context with third-party cookies blocked, 1440x900, closed after the test.

A missing Chromium or Playwright skips locally and fails under CI=true.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import ChromiumLauncher

from support import chromium_path, require


# Not session: a running Playwright leaves an event loop on the main thread that breaks later asyncio.run().
@pytest.fixture(scope="module")
def chromium(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChromiumLauncher]:
    executable = chromium_path()
    require(executable is not None, "Chromium is not installed at /usr/bin/chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        require(False, "Playwright for Python is not installed")
        raise
    with sync_playwright() as playwright:
        launcher = ChromiumLauncher(playwright, executable, tmp_path_factory.mktemp("chromium"))
        yield launcher
        launcher.close()


@pytest.fixture
def browser_context(chromium: ChromiumLauncher):
    context = chromium.launch(block_third_party_cookies=True)
    yield context
    context.close()
