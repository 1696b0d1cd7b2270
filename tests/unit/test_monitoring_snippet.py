"""The monitoring snippet: what the official plugins print, and nothing a value can break out of."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess

import pytest

from smbc.monitoring.snippet import (
    SnippetConfig,
    build_snippet,
    content_hash,
    js_value,
    normalize_endpoint,
)


def config(**overrides: object) -> SnippetConfig:
    base: dict[str, object] = {
        "client_id": "abc123clientid",
        "endpoint": "app3.salesmanago.com",
        "store_hash": "h4sh",
        "channel_id": 1,
        "app_url": "https://smbc.example.com",
    }
    base.update(overrides)
    return SnippetConfig(**base)  # type: ignore[arg-type]


def script_body(html: str) -> str:
    assert html.startswith("<script>") and html.endswith("</script>")
    inner = html[len("<script>") : -len("</script>")]
    # Exactly one <script> element (the Scripts API spec): nothing inside may close or open one.
    assert "</script" not in inner.lower() and "<script" not in inner.lower()
    return inner


@pytest.mark.parametrize(("custom", "banners", "popups"), list(itertools.product([False, True], repeat=3)))
def test_each_flag_combination_prints_exactly_its_lines(custom: bool, banners: bool, popups: bool) -> None:
    html = build_snippet(config(custom_script=custom, banners=banners, popups=popups))
    body = script_body(html)
    assert 'var _smid = "abc123clientid";' in body
    assert ("var _smcustom = true;" in body) is custom
    assert ("var _smbanners = true;" in body) is banners
    assert ('"https://app3.salesmanago.com/dynamic/abc123clientid/popups.js"' in body) is popups
    assert '"https://app3.salesmanago.com/static/sm.js"' in body
    assert "_smapp" not in body and "_smclt" not in body


def test_flags_come_in_the_plugins_order_before_the_loader() -> None:
    body = script_body(build_snippet(config(smapp="7", custom_script=True, banners=True, cookie_days=30)))
    positions = [body.index(s) for s in ("_smid", "_smapp", "_smcustom", "_smbanners", "_smclt", "sm.js")]
    assert positions == sorted(positions)


@pytest.mark.parametrize(
    ("smapp", "expected"),
    [
        (None, None),
        ("", None),
        ("0", None),
        (0, None),
        ("12", "var _smapp = 12;"),
        (5, "var _smapp = 5;"),
        ("x-y", 'var _smapp = "x-y";'),
    ],
)
def test_smapp_only_when_the_account_has_one(smapp: object, expected: str | None) -> None:
    body = script_body(build_snippet(config(smapp=smapp)))
    if expected is None:
        assert "_smapp" not in body
    else:
        assert expected in body


def test_cookie_lifetime_in_days_only_when_set() -> None:
    assert "var _smclt = 365;" in build_snippet(config(cookie_days=365))
    assert "_smclt" not in build_snippet(config(cookie_days=None))


@pytest.mark.parametrize(
    ("typed", "normalised"),
    [
        ("app3.salesmanago.com", "https://app3.salesmanago.com"),
        ("  app2.salesmanago.pl/ ", "https://app2.salesmanago.pl"),
        ("https://www.salesmanago.com", "https://www.salesmanago.com"),
        ("http://127.0.0.1:9100", "http://127.0.0.1:9100"),
    ],
)
def test_endpoint_normalisation(typed: str, normalised: str) -> None:
    assert normalize_endpoint(typed) == normalised
    assert f'"{normalised}/static/sm.js"' in build_snippet(config(endpoint=typed))


@pytest.mark.parametrize("bad", ["", "   ", "ftp://x.example", "https://", "a b.example"])
def test_bad_endpoints_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        normalize_endpoint(bad)


HOSTILE = [
    "</script><script>alert(1)</script>",
    '"; alert(1); var x = "',
    "'; alert(1); //",
    "a\u2028b\u2029c",
    "<!--",
    '\\"',
    "&lt;&amp;",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_stay_inside_their_string(value: str) -> None:
    literal = js_value(value)
    assert json.loads(literal) == value  # still the same string for the JavaScript engine
    for char in "<>&\u2028\u2029":
        assert char not in literal
    html = build_snippet(config(client_id=value, store_hash="h", smapp=value))
    script_body(html)  # raises when a value opened or closed a script element


def test_hostile_values_leave_valid_javascript_that_assigns_them_verbatim() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    for value in HOSTILE:
        inner = script_body(build_snippet(config(client_id=value, popups=True)))
        # Run the snippet in node with a minimal DOM; print what _smid ended up as.
        program = (
            "var window = {addEventListener(){}}; var document = {readyState: 'complete', cookie: '',"
            " createElement(){return {};}, getElementsByTagName(){return [{parentNode:{insertBefore(){}}}];},"
            " body: {appendChild(){}}, addEventListener(){}};"
            " var XMLHttpRequest = function(){}; XMLHttpRequest.prototype.open = function(){};"
            + inner
            + "\nprocess.stdout.write(JSON.stringify(_smid));"
        )
        out = subprocess.run([node, "-e", program], capture_output=True, text=True, timeout=20, check=True)
        assert json.loads(out.stdout) == value


def test_cart_link_script_posts_to_the_app_for_its_store_and_channel() -> None:
    body = script_body(build_snippet(config(store_hash="st0re", channel_id=42)))
    assert '"https://smbc.example.com/storefront/cart-link?store=st0re"' in body
    assert 'store = "st0re"' in body and "channel = 42" in body
    assert "/api/storefront/carts" in body and "smclient" in body and "sessionStorage" in body


def test_channels_get_different_snippets_and_hashes() -> None:
    one, two = build_snippet(config(channel_id=1)), build_snippet(config(channel_id=2))
    assert one != two
    assert content_hash(one) != content_hash(two)
    assert re.fullmatch(r"[0-9a-f]{64}", content_hash(one))


def test_empty_client_id_is_refused() -> None:
    with pytest.raises(ValueError, match="client id"):
        build_snippet(config(client_id=" "))
