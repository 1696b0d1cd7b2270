"""One Jinja2 environment for every server-rendered page and fragment (autoescape on)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

# Pages carry a session token (and their URL a signed payload): never cache them, never leak the
# URL in a Referer, only run our own scripts, and only inside a BigCommerce control panel's frame.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors {ancestors}"
)
# The control panel: login.bigcommerce.com and its app frames, and each store's
# store-<hash>.mybigcommerce.com/manage.
CONTROL_PANEL_ORIGINS = ("https://*.bigcommerce.com", "https://*.mybigcommerce.com")
# A local control panel (the sandbox) frames the app from the other loopback name: a different site.
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


@lru_cache(maxsize=8)
def frame_ancestors(bc_login_url: str) -> str:
    """The origins allowed to frame our pages: BigCommerce's control panel, plus the control panel
    that SMBC_BC_LOGIN_URL names when it is not BigCommerce's (the sandbox in the demo and tests)."""
    origins = list(CONTROL_PANEL_ORIGINS)
    parts = urlsplit(bc_login_url)
    host = parts.hostname or ""
    bigcommerce = parts.scheme == "https" and (host == "bigcommerce.com" or host.endswith(".bigcommerce.com"))
    if host and not bigcommerce:
        port = f":{parts.port}" if parts.port else ""
        hosts = LOOPBACK_NAMES if host in LOOPBACK_NAMES else (f"[{host}]" if ":" in host else host,)
        origins += [f"{parts.scheme}://{name}{port}" for name in hosts]
    return " ".join(origins)


def page_headers(request: Request) -> dict[str, str]:
    """The headers of every rendered page, with the CSP for this app's settings."""
    ancestors = frame_ancestors(request.app.state.settings.bc_login_url)
    return {**PAGE_HEADERS, "Content-Security-Policy": CONTENT_SECURITY_POLICY.format(ancestors=ancestors)}


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context or {}, status_code=status_code)
    response.headers.update(page_headers(request))
    return response


def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    """A clear, styled HTML error page (inside the control panel's frame)."""
    return render(
        request,
        "error.html",
        {"title": title, "message": message, "status": status_code},
        status_code=status_code,
    )
