"""Opt-in / opt-out callbacks: SALESmanago calls the URL configured for the account."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import httpx

PLACEHOLDER = "$email$"
CALLBACK_TIMEOUT_S = 10.0


def check_callback_url(url: str) -> str:
    """An empty string clears the URL; anything else must be http(s) and contain `$email$`."""
    url = url.strip()
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"callback URL must start with http:// or https://, got {url!r}")
    if PLACEHOLDER not in url:
        raise ValueError(f"callback URL must contain the {PLACEHOLDER} placeholder, got {url!r}")
    return url


def callback_url(template: str, email: str) -> str:
    return template.replace(PLACEHOLDER, quote(email, safe=""))


def send_callback(url: str) -> httpx.Response:
    """Server-to-server GET, as SALESmanago does (the method is UNCONFIRMED; GET is the documented form)."""
    with httpx.Client(timeout=CALLBACK_TIMEOUT_S, follow_redirects=False) as client:
        return client.get(url)
