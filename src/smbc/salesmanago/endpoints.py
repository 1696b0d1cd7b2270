"""Where the SALESmanago client may send a request: the allowlist from `SMBC_SM_ENDPOINT_HOSTS`.

An endpoint is typed by a merchant, named in a login answer or read from a stored row, so none of
them is trusted. `check_endpoint` is the one check every call passes before anything is sent:
`*.domain` entries allow https on port 443 under that domain, an entry with a scheme allows exactly
that origin (local fakes). Names are resolved again when the connection is opened, by the
transport of `guarded_http_client`: every resolved address must be public unless an entry with a
scheme names that origin, and the connection goes to the address that was checked (pinned), so a
name that changes its answer between the check and the connect (DNS rebinding) reaches nothing."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.cookiejar import CookieJar
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

from smbc.core.http_clients import NoCookies
from smbc.core.remote_calls import Outcome, RemoteCallError, Service

DEFAULT_ENTRIES = "*.salesmanago.com,*.salesmanago.pl"

MSG_REFUSED = "{endpoint} is not a SALESmanago address this app may use; allowed: {allowed}."

Resolver = Callable[..., Sequence[tuple[Any, ...]]]


class EndpointRefused(RemoteCallError):
    """The endpoint is not allowed: nothing was sent. A stored endpoint refused this way needs a new
    login, so the outcome is CREDENTIALS (the store pauses until the merchant logs in again)."""

    def __init__(self, endpoint: str, allowed: str) -> None:
        super().__init__(
            Outcome.CREDENTIALS,
            MSG_REFUSED.format(endpoint=endpoint, allowed=allowed),
            service=Service.SALESMANAGO,
            never_sent=True,
        )
        self.endpoint = endpoint


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


@dataclass(frozen=True)
class EndpointAllowlist:
    domains: tuple[str, ...]  # "salesmanago.com": https on port 443 on any name under it
    origins: tuple[tuple[str, str, int], ...]  # (scheme, host, port), exactly

    @classmethod
    def parse(cls, text: str) -> EndpointAllowlist:
        domains: list[str] = []
        origins: list[tuple[str, str, int]] = []
        for entry in (e.strip() for e in text.split(",")):
            if entry.startswith("*.") and len(entry) > 2:
                domains.append(entry[2:].lower().rstrip("."))
            elif "://" in entry:
                parts = urlsplit(entry)
                if parts.scheme in ("http", "https") and parts.hostname:
                    port = parts.port or _default_port(parts.scheme)
                    origins.append((parts.scheme, parts.hostname.lower(), port))
        return cls(tuple(domains), tuple(origins))

    def with_origin(self, url: str) -> EndpointAllowlist:
        """This allowlist and the origin of `url` (a URL the operator configured)."""
        extra = tuple(o for o in EndpointAllowlist.parse(url).origins if o not in self.origins)
        return EndpointAllowlist(self.domains, self.origins + extra)

    def describe(self) -> str:
        names = [f"*.{d}" for d in self.domains]
        names += [f"{scheme}://{_netloc(host, port)}" for scheme, host, port in self.origins]
        return ", ".join(names) or "nothing"

    def names_origin(self, host: str, port: int) -> bool:
        """Is (host, port) an origin an entry with a scheme names? Only those may be internal."""
        host = host.lower().strip("[]")
        return any(h.strip("[]") == host and p == port for _, h, p in self.origins)

    def allows(self, scheme: str, host: str, port: int) -> bool:
        host = host.lower().rstrip(".")
        if (scheme, host, port) in self.origins:
            return True
        if scheme != "https" or port != 443 or _ip(host) is not None:
            return False
        return any(host.endswith("." + domain) for domain in self.domains)


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_internal(address: str) -> bool:
    """Loopback, private, link-local (169.254.169.254, the cloud metadata), unspecified, reserved or
    multicast: never a SALESmanago server."""
    ip = _ip(address.split("%", 1)[0])
    if ip is None:
        return True  # not an address at all: refuse rather than guess
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def check_endpoint(url: str, allowlist: EndpointAllowlist) -> str:
    """The origin of `url` (scheme://host[:port]) when the allowlist allows it; EndpointRefused
    otherwise. Checked before every request, whatever the endpoint's source."""
    parts = urlsplit((url or "").strip())
    try:
        port = parts.port or _default_port(parts.scheme)
    except ValueError:
        port = -1
    host = (parts.hostname or "").lower()
    allowed = parts.scheme in ("http", "https") and host and port > 0 and not parts.username
    if not allowed or not allowlist.allows(parts.scheme, host, port):
        raise EndpointRefused(parts.netloc or url, allowlist.describe())
    ip = _ip(host)
    if ip is not None and is_internal(host) and not allowlist.names_origin(host, port):
        raise EndpointRefused(parts.netloc, allowlist.describe())
    return f"{parts.scheme}://{parts.netloc}"


def checked_addresses(
    host: str, port: int, allowlist: EndpointAllowlist, resolve: Resolver = socket.getaddrinfo
) -> list[str]:
    """The addresses `host` resolves to, all of them public unless an entry with a scheme names this
    origin; EndpointRefused when one is internal (a name pointing at the inside is refused, not
    skipped)."""
    infos = resolve(host, port, type=socket.SOCK_STREAM)
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allowlist.names_origin(host, port) and any(is_internal(a) for a in addresses):
        raise EndpointRefused(_netloc(host, port), allowlist.describe())
    return addresses


class GuardedNetworkBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to addresses `checked_addresses` passed, connecting to the
    checked address itself (TLS still verifies the name: httpcore sends the URL's host as SNI)."""

    def __init__(
        self,
        allowlist: EndpointAllowlist,
        *,
        resolve: Resolver = socket.getaddrinfo,
        inner: httpcore.NetworkBackend | None = None,
    ) -> None:
        self._allowlist = allowlist
        self._resolve = resolve
        self._inner = inner or httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = checked_addresses(host, port, self._allowlist, self._resolve)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"{host} does not resolve: {exc}") from None
        last: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        raise last or httpcore.ConnectError(f"{host} has no address")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise EndpointRefused(path, self._allowlist.describe())

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on a `GuardedNetworkBackend`. httpx takes no network backend, so the pool
    it builds is replaced by the same pool on the guarded backend (no proxy: a proxy would be the
    address connected to, and it would resolve the name itself, after our check)."""

    def __init__(self, allowlist: EndpointAllowlist, *, resolve: Resolver = socket.getaddrinfo) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=GuardedNetworkBackend(allowlist, resolve=resolve),
        )


class GuardedClient(httpx.Client):
    """The client of SALESmanago calls: one guarded transport (no proxy, nothing mounted), no auth,
    no cookie kept, redirects never followed."""

    def __init__(self, transport: GuardedTransport) -> None:
        super().__init__(transport=transport, follow_redirects=False, trust_env=False)
        self.cookies = CookieJar(policy=NoCookies())
        self.guarded = transport

    def send_built(self, request: httpx.Request) -> httpx.Response:
        """`send(request)` for a request built in full (headers, timeout) by the caller, read to its
        end: straight to the one transport, without the auth, redirect and cookie steps, which do
        nothing for this client and cost a tenth of a call."""
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        response = self.guarded.handle_request(request)
        response.request = request
        try:
            response.read()
        except BaseException:
            response.close()
            raise
        return response


def guarded_http_client(
    allowlist: EndpointAllowlist, *, resolve: Resolver = socket.getaddrinfo
) -> GuardedClient:
    """A client for SALESmanago calls: redirects are never followed (a 3xx is an answer, classified
    as a failure) and connections go only to checked addresses."""
    return GuardedClient(GuardedTransport(allowlist, resolve=resolve))
