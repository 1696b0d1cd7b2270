"""Launching Debian's Chromium through Playwright, set up the way merchants' browsers are: a fresh
profile with "Block third-party cookies" on, and third-party storage partitioned (Playwright turns
partitioning off by default; we pass our own --disable-features list without it). See
../shared/reference/browser-testing.md.

The fixtures that use this are in conftest.py.
"""

from __future__ import annotations

import contextlib
import itertools
import json
from pathlib import Path

CHROMIUM_ARGS = [
    "--no-sandbox",  # root in a container
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
# Playwright's own list minus ThirdPartyStoragePartitioning: merchants' browsers partition storage.
DISABLED_FEATURES = [
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
]
PARTITIONING = "ThirdPartyStoragePartitioning"


def browser_command_line(context) -> list[str]:
    """The running browser's switches, as chrome://version shows them."""
    page = context.new_page()
    try:
        page.goto("chrome://version")
        return page.locator("#command_line").inner_text().split()
    finally:
        page.close()


class ChromiumLauncher:
    def __init__(self, playwright, executable: str, profiles: Path) -> None:
        self._playwright = playwright
        self._executable = executable
        self._profiles = profiles
        self._contexts: list = []
        self._numbers = itertools.count()
        # Playwright's default --disable-features switch (exact text), found on the first launch.
        self._playwright_default: str | None = None

    def launch(self, *, block_third_party_cookies: bool = True, width: int = 1440, height: int = 900):
        context = self._launch(block_third_party_cookies, width, height)
        defaults = [
            a
            for a in browser_command_line(context)
            if a.startswith("--disable-features=") and PARTITIONING in a
        ]
        if defaults:
            # Relaunch without Playwright's list, so partitioning stays on as in merchants' browsers.
            context.close()
            self._playwright_default = defaults[0]
            context = self._launch(block_third_party_cookies, width, height)
        self._contexts.append(context)
        return context

    def _launch(self, block: bool, width: int, height: int):
        profile = self._profiles / f"profile-{next(self._numbers)}"
        (profile / "Default").mkdir(parents=True)
        # The browser's own "Block third-party cookies" setting (1) or "Allow" (0), before first start.
        (profile / "Default" / "Preferences").write_text(
            json.dumps({"profile": {"cookie_controls_mode": 1 if block else 0}})
        )
        return self._playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=self._executable,
            headless=True,
            args=[*CHROMIUM_ARGS, "--disable-features=" + ",".join(DISABLED_FEATURES)],
            ignore_default_args=[self._playwright_default] if self._playwright_default else None,
            viewport={"width": width, "height": height},
        )

    def close(self) -> None:
        for context in self._contexts:
            with contextlib.suppress(Exception):  # already closed by the test
                context.close()
