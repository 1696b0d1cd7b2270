"""SALESmanago's monitoring code for one storefront (`_smid`, optional `_smapp` and flags, then
sm.js from the account's endpoint), plus our small cart-link script (it tells the app which
SALESmanago contact a storefront cart belongs to).

Pure: no network, no database. `smbc.monitoring.scripts` installs the result with the Scripts API.
Everything is ONE `<script>` tag because BigCommerce's Scripts API takes exactly one per
`script_tag` script, so popups.js is inserted from inside it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from urllib.parse import quote

from smbc.salesmanago.client import normalize_endpoint

# JSON is valid JavaScript, except that these would let a value end the <script> element or a line.
_JS_UNSAFE = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}

CART_LINK_PATH = "/storefront/cart-link"
# sessionStorage key holding "cart id|smclient" of the last link the server accepted.
CART_LINK_STORAGE_KEY = "smbc_cart_link"


def js_value(value: str | int | bool | None) -> str:
    """A JavaScript literal for `value` that cannot break out of a <script> element."""
    text = json.dumps(value, ensure_ascii=True)
    for char, escaped in _JS_UNSAFE.items():
        text = text.replace(char, escaped)
    return text


@dataclass(frozen=True)
class SnippetConfig:
    client_id: str
    endpoint: str  # as stored for the account; normalised here by the login's own rule
    store_hash: str
    channel_id: int
    app_url: str  # SMBC_APP_URL: where the cart-link script posts
    smapp: str | int | None = None
    custom_script: bool = False
    banners: bool = False
    popups: bool = False
    cookie_days: int | None = None


def _smapp_literal(smapp: str | int | None) -> str | None:
    """`_smapp` only when the account has one (non-empty, non-zero)."""
    if smapp is None or (isinstance(smapp, str) and smapp.strip() in ("", "0")) or smapp == 0:
        return None
    if isinstance(smapp, str) and smapp.strip().isdigit():
        return js_value(int(smapp.strip()))
    return js_value(smapp)


def build_snippet(config: SnippetConfig) -> str:
    """The `html` of the storefront script for one channel."""
    if not config.client_id.strip():
        raise ValueError("the SALESmanago client id is empty")
    endpoint = normalize_endpoint(config.endpoint)
    lines = [
        "<script>",
        "/* SALESmanago monitoring code, installed by SALESmanago for BigCommerce */",
        f"var _smid = {js_value(config.client_id)};",
    ]
    smapp = _smapp_literal(config.smapp)
    if smapp is not None:
        lines.append(f"var _smapp = {smapp};")
    if config.custom_script:
        lines.append("var _smcustom = true;")
    if config.banners:
        lines.append("var _smbanners = true;")
    if config.cookie_days is not None:
        lines.append(f"var _smclt = {js_value(int(config.cookie_days))};")
    lines += [
        "(function (w, d, s, src) {",
        "  w.SalesmanagoObject = 'sm';",
        "  w.sm = w.sm || function () { (w.sm.q = w.sm.q || []).push(arguments); };",
        "  var js = d.createElement(s), first = d.getElementsByTagName(s)[0];",
        "  js.async = 1; js.src = src; first.parentNode.insertBefore(js, first);",
        f"}})(window, document, 'script', {js_value(endpoint + '/static/sm.js')});",
    ]
    if config.popups:
        popups = f"{endpoint}/dynamic/{quote(config.client_id, safe='')}/popups.js"
        lines += [
            "(function (d, src) {",
            "  var p = d.createElement('script'); p.async = true; p.src = src;",
            "  (d.body || d.head || d.documentElement).appendChild(p);",
            f"}})(document, {js_value(popups)});",
        ]
    lines.append(cart_link_script(config.app_url, config.store_hash, config.channel_id))
    lines.append("</script>")
    return "\n".join(lines)


def cart_link_script(app_url: str, store_hash: str, channel_id: int) -> str:
    """Posts {store, channel_id, cart_id, smclient} when the storefront cart or the visitor's
    `smclient` cookie changed since the last accepted post (remembered in sessionStorage)."""
    # The store in the query string lets the CORS preflight (which has no body) be checked too.
    target = f"{app_url.rstrip('/')}{CART_LINK_PATH}?store={quote(store_hash, safe='')}"
    head = (
        f"  var url = {js_value(target)}, store = {js_value(store_hash)},"
        f" channel = {js_value(int(channel_id))}, key = {js_value(CART_LINK_STORAGE_KEY)};"
    )
    return "\n".join(["(function (w, d) {", head, *_CART_LINK_BODY, "})(window, document);"])


# The rest of the cart-link script: it uses only `url`, `store`, `channel` and `key` from above.
_CART_LINK_BODY = [
    "  if (!w.fetch || w.__smbcCartLink) { return; }",
    "  w.__smbcCartLink = true;",
    "  var nativeFetch = w.fetch.bind(w), timer = null, busy = false;",
    "  function cookie(name) {",
    "    var parts = d.cookie ? d.cookie.split('; ') : [];",
    "    for (var i = 0; i < parts.length; i++) {",
    "      var eq = parts[i].indexOf('=');",
    "      if (parts[i].slice(0, eq) === name) {",
    "        try { return decodeURIComponent(parts[i].slice(eq + 1)); } catch (e) { return ''; }",
    "      }",
    "    }",
    "    return '';",
    "  }",
    "  function remembered() { try { return w.sessionStorage.getItem(key); } catch (e) { return null; } }",
    "  function remember(v) { try { w.sessionStorage.setItem(key, v); } catch (e) {} }",
    "  function sync() {",
    "    var smclient = cookie('smclient');",
    "    if (!smclient) { return; }",
    "    if (busy) { soon(); return; }",
    "    busy = true;",
    "    nativeFetch('/api/storefront/carts', {credentials: 'same-origin'})",
    "      .then(function (r) { return r.ok ? r.json() : []; })",
    "      .then(function (carts) {",
    "        var cart = carts && carts.length ? carts[0] : null;",
    "        if (!cart || !cart.id) { return; }",
    "        var seen = cart.id + '|' + smclient;",
    "        if (remembered() === seen) { return; }",
    "        return nativeFetch(url, {",
    "          method: 'POST', mode: 'cors', credentials: 'omit',",
    "          headers: {'Content-Type': 'application/json'},",
    "          body: JSON.stringify(",
    "            {store: store, channel_id: channel, cart_id: cart.id, smclient: smclient})",
    "        }).then(function (r) { if (r.ok) { remember(seen); } });",
    "      })['catch'](function () {})",
    "      .then(function () { busy = false; });",
    "  }",
    "  function soon() { if (timer) { clearTimeout(timer); } timer = setTimeout(sync, 300); }",
    "  // The theme changes the cart with fetch or XHR: look again after any cart request ends.",
    "  function isCart(u) { u = String(u || ''); return /cart/i.test(u) && u.indexOf(url) !== 0; }",
    "  w.fetch = function (input) {",
    "    var p = nativeFetch.apply(w, arguments), u = input && input.url ? input.url : input;",
    "    if (isCart(u)) { p.then(soon, soon); }",
    "    return p;",
    "  };",
    "  var open = XMLHttpRequest.prototype.open;",
    "  XMLHttpRequest.prototype.open = function (m, u) {",
    "    if (isCart(u)) { this.addEventListener('loadend', soon); }",
    "    return open.apply(this, arguments);",
    "  };",
    "  if (d.readyState === 'loading') { d.addEventListener('DOMContentLoaded', soon); } else { soon(); }",
    "  w.addEventListener('pageshow', soon);",
    "  d.addEventListener('visibilitychange', function () { if (!d.hidden) { soon(); } });",
]


def content_hash(html: str) -> str:
    """What we compare to tell whether a live script is the one we installed."""
    return hashlib.sha256(html.encode()).hexdigest()
