"""The dashboard shell (rendered after a verified load or install) and the placeholder tabs.

Tabs are fragments at `/app/tabs/<slug>`, each served by its feature area. `placeholder_router` is
mounted after every feature router, so a feature's own route wins as soon as it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from smbc.core.clock import get_clock
from smbc.stores.access import DashboardSession
from smbc.web.session import current_session, mint_session_token, session_expires_at
from smbc.web.templating import render

router = APIRouter()
placeholder_router = APIRouter()


@dataclass(frozen=True)
class Tab:
    slug: str
    label: str


TABS = [
    Tab("account", "Account Settings"),
    Tab("platform", "Platform Settings"),
    Tab("monitoring", "Monitoring Code"),
    Tab("catalog", "Product Catalog"),
    Tab("export", "Export Data"),
    Tab("activity", "Activity"),
]
DEFAULT_TAB = "account"

# What each not-yet-built tab will hold, said plainly to the merchant.
PLACEHOLDERS: dict[str, str] = {
    "monitoring": (
        "Here you will install SALESmanago's monitoring code on the storefronts you choose, with the "
        "custom-script, banners and pop-ups options, and see what is live on each storefront."
    ),
    "export": (
        "Here you will export customers as SALESmanago contacts and orders as purchase events for a "
        "date range, in the background, with progress. Running an export twice sends nothing twice."
    ),
    "activity": (
        "Here you will see every change received from BigCommerce and every call made to SALESmanago, "
        "with the reason for each failure and a way to retry it."
    ),
}


def initial_tab(deep_link: str) -> str:
    """The tab a root-relative deep link names (`/export`, `/app/tabs/export`), else Account Settings."""
    path = deep_link.split("?", 1)[0].split("#", 1)[0]
    segments = [part for part in path.split("/") if part]
    slugs = {tab.slug for tab in TABS}
    for part in reversed(segments):
        if part in slugs:
            return part
    return DEFAULT_TAB


def render_dashboard(
    request: Request,
    session: DashboardSession,
    *,
    store_name: str,
    deep_link: str = "/",
    onboarding: bool = False,
) -> HTMLResponse:
    """The shell with a fresh session token in the page (never in a cookie or URL)."""
    keys = request.app.state.settings.secret_keys
    issued = get_clock().time()
    return render(
        request,
        "onboarding.html" if onboarding else "dashboard.html",
        {
            "session_token": mint_session_token(session, keys),
            "session_expires": session_expires_at(issued),
            "store_name": store_name,
            "role_label": "Store owner" if session.is_owner else "Store user",
            "email": session.email,
            "tabs": TABS,
            "initial_tab": initial_tab(deep_link),
        },
    )


@placeholder_router.get("/app/tabs/{slug}", response_class=HTMLResponse)
def placeholder_tab(
    slug: str, request: Request, session: DashboardSession = Depends(current_session)
) -> HTMLResponse:
    if slug not in PLACEHOLDERS:
        raise HTTPException(status_code=404, detail="No such tab.")
    label = next(tab.label for tab in TABS if tab.slug == slug)
    return render(request, "tab_placeholder.html", {"title": label, "description": PLACEHOLDERS[slug]})
