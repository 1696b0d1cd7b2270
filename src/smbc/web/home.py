"""The app's own root: a short page saying what this is and where it opens (the control panel)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from smbc.web.templating import render

router = APIRouter()

BIGCOMMERCE_LOGIN_URL = "https://login.bigcommerce.com"


def control_panel_url(bc_login_url: str) -> str | None:
    """The control panel to link to when SMBC_BC_LOGIN_URL names one other than BigCommerce's (the
    sandbox in the demo); None for BigCommerce, whose merchants each open their own store's panel."""
    login = bc_login_url.rstrip("/")
    if login == BIGCOMMERCE_LOGIN_URL or not urlsplit(login).hostname:
        return None
    return f"{login}/manage"


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    link = control_panel_url(request.app.state.settings.bc_login_url)
    return render(request, "home.html", {"control_panel_url": link})
