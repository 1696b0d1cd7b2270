"""Self-test of the browser set-up the dashboard tests rely on: in a cross-site frame, third-party
cookies are really blocked (and really work with the setting off), and storage is partitioned."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from browser_support import PARTITIONING, browser_command_line
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from smbc.core.http_server import BackgroundServer

pytestmark = pytest.mark.browser

READ = """<script>
var stored; try { stored = localStorage.getItem("k"); } catch (e) { stored = "blocked"; }
document.title = JSON.stringify({cookie: document.cookie, stored: stored});
</script>"""


@dataclass
class CrossSite:
    port: int = 0
    cookie_headers: list[str | None] = field(default_factory=list)

    @property
    def panel(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def app(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def cross_site() -> Iterator[CrossSite]:
    """One server reached as two sites: the 'control panel' (localhost) frames the 'app' (127.0.0.1)."""
    state = CrossSite()
    api = FastAPI()

    @api.get("/panel", response_class=HTMLResponse)
    def panel() -> str:
        return f'<iframe name="app" src="{state.app}/set" width="600" height="200"></iframe>'

    @api.get("/set", response_class=HTMLResponse)
    def set_cookies(request: Request) -> HTMLResponse:
        state.cookie_headers.append(request.headers.get("cookie"))
        page = HTMLResponse(
            '<script>document.cookie = "by_js=1; SameSite=None; Secure";'
            'try { localStorage.setItem("k", "framed"); } catch (e) {}</script>'
        )
        page.set_cookie("by_header", "1", samesite="none", secure=True)
        return page

    @api.get("/read", response_class=HTMLResponse)
    def read(request: Request) -> str:
        state.cookie_headers.append(request.headers.get("cookie"))
        return READ

    with BackgroundServer(api, host="127.0.0.1") as server:
        state.port = server.port
        yield state


def framed_read(context, site: CrossSite) -> tuple[str, str]:
    page = context.new_page()
    page.goto(f"{site.panel}/panel")
    frame = page.frame(name="app")
    frame.wait_for_load_state()
    frame.goto(f"{site.app}/read")
    frame.wait_for_function("document.title !== ''")
    import json

    seen = json.loads(frame.title())
    return seen["cookie"], seen["stored"]


def top_level_read(context, site: CrossSite) -> tuple[str, str]:
    import json

    page = context.new_page()
    page.goto(f"{site.app}/read")
    page.wait_for_function("document.title !== ''")
    seen = json.loads(page.title())
    return seen["cookie"], seen["stored"]


def test_third_party_cookies_are_blocked_in_a_cross_site_frame(chromium, cross_site: CrossSite) -> None:
    context = chromium.launch(block_third_party_cookies=True)
    cookie, stored = framed_read(context, cross_site)
    assert cookie == ""
    assert cross_site.cookie_headers[-1] is None  # nor sent to the server
    # Storage still works in the frame, but partitioned: the app's own top-level page cannot see it.
    assert stored == "framed"
    assert top_level_read(context, cross_site)[1] is None
    context.close()


def test_with_the_setting_off_the_same_frame_keeps_its_cookies(chromium, cross_site: CrossSite) -> None:
    context = chromium.launch(block_third_party_cookies=False)
    cookie, _stored = framed_read(context, cross_site)
    assert sorted(cookie.split("; ")) == ["by_header=1", "by_js=1"]
    assert cross_site.cookie_headers[-1] is not None and "by_header=1" in cross_site.cookie_headers[-1]
    context.close()


def test_storage_partitioning_is_not_disabled(browser_context) -> None:
    switches = [a for a in browser_command_line(browser_context) if a.startswith("--disable-features=")]
    assert switches and not any(PARTITIONING in s for s in switches)
