"""One Jinja2 environment for every server-rendered page and fragment (autoescape on)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

# Pages carry a session token (and their URL a signed payload): never cache them, never leak the
# URL in a Referer, only run our own scripts.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
}


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> HTMLResponse:
    response = templates.TemplateResponse(request, name, context or {}, status_code=status_code)
    response.headers.update(PAGE_HEADERS)
    return response


def error_page(request: Request, status_code: int, title: str, message: str) -> HTMLResponse:
    """A clear, styled HTML error page (inside the control panel's frame)."""
    return render(
        request,
        "error.html",
        {"title": title, "message": message, "status": status_code},
        status_code=status_code,
    )
