"""Finding 2: the SALESmanago endpoint cannot steer the server (SSRF). Only endpoints allowed by
SMBC_SM_ENDPOINT_HOSTS are called (typed, named in a login answer, or stored), redirects are never
followed, names resolving inside are refused, and a refused endpoint gets one message whatever is
listening there. A listener on 127.0.0.1 stands in for every forbidden host and must receive nothing."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import pytest
from sqlalchemy import select

from smbc.account.credentials import salesmanago_client
from smbc.account.login import LoginFailed, login_with_api_credentials, login_with_password
from smbc.account.models import SalesmanagoAccount
from smbc.bigcommerce.client import BigCommerceClient, shared_http
from smbc.core.config import Settings
from smbc.core.encryption import configure
from smbc.core.http_server import free_port
from smbc.core.remote_calls import Outcome, RemoteCall, RemoteCallError, record_call
from smbc.db.models import Store
from smbc.db.session import Database
from smbc.salesmanago.client import SalesmanagoAccountApi, record_calls_into
from smbc.salesmanago.endpoints import (
    EndpointAllowlist,
    EndpointRefused,
    GuardedNetworkBackend,
    check_endpoint,
    checked_addresses,
)
from smbc.sandbox.salesmanago import FakeSalesmanago

DEFAULT = EndpointAllowlist.parse("*.salesmanago.com,*.salesmanago.pl")


class Listener:
    """A TCP listener on 127.0.0.1 standing in for a forbidden host: counts connections and bytes."""

    def __init__(self, answer: bytes = b"") -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self.received = b""
        self._answer = answer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(0.5)
                try:
                    self.received += conn.recv(65536)
                    if self._answer:
                        conn.sendall(self._answer)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


class _Redirect(BaseHTTPRequestHandler):
    target = ""

    def _send(self) -> None:
        self.send_response(302)
        self.send_header("Location", self.target + self.path)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _send

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def redirector(listener: Listener) -> Iterator[str]:
    """An allowed server that answers every request with a 302 to the forbidden listener."""
    handler = type("Redirect", (_Redirect,), {"target": listener.url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def world(
    settings: Settings, fake_sm: tuple[FakeSalesmanago, str]
) -> Iterator[tuple[Database, Settings, int]]:
    url = fake_sm[1]
    app_settings = settings.model_copy(
        update={"sm_default_endpoint": url, "sm_v3_url": url, "sm_endpoint_hosts": url}
    )
    configure(app_settings.secret_keys)
    db = Database(app_settings.database_url)
    db.upgrade()
    with db.session() as s:
        store = Store(hash="abc123")
        s.add(store)
        s.flush()
        store_id = store.id
    yield db, app_settings, store_id
    db.dispose()


# -- the allowlist, with addresses as strings (nothing connects) ---------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254",
        "https://169.254.169.254",
        "http://localhost:6379",
        "http://127.0.0.1:9100",
        "https://10.0.0.5",
        "https://[::1]",
        "http://app3.salesmanago.com",  # http is not https
        "https://app3.salesmanago.com:8443",  # another port
        "https://salesmanago.com.attacker.example",
        "https://attackersalesmanago.com",
        "https://user@app3.salesmanago.com",
        "ftp://app3.salesmanago.com",
    ],
)
def test_the_default_allowlist_refuses_everything_but_salesmanago(url: str) -> None:
    with pytest.raises(EndpointRefused) as info:
        check_endpoint(url, DEFAULT)
    assert "is not a SALESmanago address this app may use; allowed: *.salesmanago.com" in info.value.message
    assert info.value.never_sent


def test_the_default_allowlist_allows_salesmanago_over_https() -> None:
    assert check_endpoint("https://app3.salesmanago.com", DEFAULT) == "https://app3.salesmanago.com"
    assert check_endpoint("https://app2.salesmanago.pl:443", DEFAULT) == "https://app2.salesmanago.pl:443"


def test_an_entry_with_a_scheme_allows_exactly_that_origin() -> None:
    allow = EndpointAllowlist.parse("http://127.0.0.1:9100")
    assert check_endpoint("http://127.0.0.1:9100", allow) == "http://127.0.0.1:9100"
    for other in ("http://127.0.0.1:9101", "https://127.0.0.1:9100", "http://127.0.0.2:9100"):
        with pytest.raises(EndpointRefused):
            check_endpoint(other, allow)


def _resolving(*addresses: str):
    def resolve(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]

    return resolve


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "::ffff:127.0.0.1",
        "0.0.0.0",  # noqa: S104 (a string: nothing binds or connects)
        "100.64.0.1",
    ],
)
def test_an_allowed_name_resolving_inside_is_refused(address: str) -> None:
    with pytest.raises(EndpointRefused):
        checked_addresses("app3.salesmanago.com", 443, DEFAULT, _resolving("34.120.0.1", address))


def test_a_name_resolving_outside_passes() -> None:
    assert checked_addresses("app3.salesmanago.com", 443, DEFAULT, _resolving("34.120.0.1")) == ["34.120.0.1"]


class _RecordingBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self.connected: list[tuple[str, int]] = []

    def connect_tcp(self, host: str, port: int, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        self.connected.append((host, port))
        raise httpcore.ConnectError("not really connecting")


def test_the_connection_goes_to_the_checked_address_so_rebinding_reaches_nothing() -> None:
    """DNS can change between the check and the connect: the transport resolves once, checks every
    address, and connects to the checked address itself (never the name again)."""
    answers = iter([["34.120.0.1"], ["127.0.0.1"]])  # public for the check, inside afterwards

    def rebinding(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        return _resolving(*next(answers))(host, port)

    inner = _RecordingBackend()
    backend = GuardedNetworkBackend(DEFAULT, resolve=rebinding, inner=inner)
    with pytest.raises(httpcore.ConnectError):
        backend.connect_tcp("app3.salesmanago.com", 443)
    assert inner.connected == [("34.120.0.1", 443)]
    with pytest.raises(EndpointRefused):  # the next connection resolves inside: refused unconnected
        backend.connect_tcp("app3.salesmanago.com", 443)
    assert inner.connected == [("34.120.0.1", 443)]


# -- over the network: a listener on 127.0.0.1 stands in for the forbidden host ---------------------------


def test_a_typed_endpoint_not_allowed_is_refused_unsent(world, listener: Listener) -> None:
    db, settings, store_id = world
    with pytest.raises(LoginFailed) as info:
        login_with_password(
            db,
            store_id,
            email="m@shop.test",
            password="pw",
            endpoint=listener.url,
            settings=settings,
            actor="t",
        )
    assert info.value.field == "endpoint"
    assert info.value.message.endswith(
        f"is not a SALESmanago address this app may use; allowed: {settings.sm_endpoint_hosts}."
    )
    with pytest.raises(LoginFailed) as info:
        login_with_api_credentials(
            db,
            store_id,
            endpoint=listener.url,
            client_id="cid",
            api_secret="secret",
            owner="m@shop.test",
            settings=settings,
            actor="t",
        )
    assert "is not a SALESmanago address this app may use" in info.value.message
    assert listener.connections == 0 and listener.received == b""
    with db.session() as s:
        assert s.scalar(select(SalesmanagoAccount)) is None


def test_no_port_scanner_the_same_message_for_silence_and_a_wrong_answer(world) -> None:
    db, settings, store_id = world
    answering = Listener(answer=b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    silent_port = free_port()
    messages = []
    try:
        for port in (answering.port, silent_port):
            with pytest.raises(LoginFailed) as info:
                login_with_password(
                    db,
                    store_id,
                    email="m@shop.test",
                    password="pw",
                    endpoint=f"http://127.0.0.1:{port}",
                    settings=settings,
                    actor="t",
                )
            messages.append(info.value.message.replace(str(port), "PORT"))
    finally:
        answering.close()
    assert messages[0] == messages[1]
    assert answering.connections == 0


def test_the_endpoint_named_in_the_login_answer_is_checked(world, fake_sm, listener: Listener) -> None:
    db, settings, store_id = world
    sm, _ = fake_sm
    sm.set_account_endpoint(sm.NORMAL.client_id, listener.url)  # the token answer names the listener
    with pytest.raises(LoginFailed) as info:
        login_with_password(
            db,
            store_id,
            email=sm.NORMAL.email,
            password=sm.PASSWORD,
            endpoint=None,
            settings=settings,
            actor="t",
        )
    assert info.value.message.startswith(f"127.0.0.1:{listener.port} is not a SALESmanago address")
    assert listener.connections == 0 and listener.received == b""
    with db.session() as s:
        assert s.scalar(select(SalesmanagoAccount)) is None


def test_a_stored_endpoint_is_checked_before_every_call(world, listener: Listener) -> None:
    """A row written before the allowlist, or by hand: refused, recorded, the store must log in again."""
    db, settings, store_id = world
    with db.session() as s:
        s.add(
            SalesmanagoAccount(
                store_id=store_id,
                endpoint=listener.url,
                client_id="cid",
                api_key="k",
                sha="sha",
                login_email="m@shop.test",
                owners=["m@shop.test"],
                auth_mode="login",
            )
        )
    calls: list[dict[str, Any]] = []
    with db.session() as s:
        client = salesmanago_client(
            s,
            s.get(Store, store_id),
            recorder=record_calls_into(calls.append, store_id),
            allowlist=EndpointAllowlist.parse(settings.sm_endpoint_hosts),
        )
    with pytest.raises(RemoteCallError) as info:
        client.upsert_contact({"contact": {"email": "a@b.c"}})
    assert info.value.outcome is Outcome.CREDENTIALS and info.value.never_sent
    assert "is not a SALESmanago address this app may use" in info.value.message
    assert listener.connections == 0 and listener.received == b""
    with db.session() as s:
        for fields in calls:
            record_call(s, **fields)
    with db.session() as s:
        row = s.scalars(select(RemoteCall)).one()
        assert row.outcome == "credentials" and row.status is None


def test_a_redirect_from_salesmanago_is_not_followed(redirector: str, listener: Listener) -> None:
    api = SalesmanagoAccountApi(v3_url=redirector, allowlist=EndpointAllowlist.parse(redirector))
    with pytest.raises(RemoteCallError) as info:
        api.token(redirector, "m@shop.test", "pw")
    assert info.value.status == 302 and info.value.outcome is Outcome.INVALID
    assert "redirect" in info.value.message
    assert listener.connections == 0 and listener.received == b""


def test_a_redirect_from_salesmanago_fails_the_login_unfollowed(
    world, redirector: str, listener: Listener
) -> None:
    db, settings, store_id = world
    settings = settings.model_copy(update={"sm_endpoint_hosts": f"{settings.sm_endpoint_hosts},{redirector}"})
    with pytest.raises(LoginFailed):
        login_with_password(
            db,
            store_id,
            email="m@shop.test",
            password="pw",
            endpoint=redirector,
            settings=settings,
            actor="t",
        )
    assert listener.connections == 0 and listener.received == b""


def test_the_bigcommerce_client_does_not_follow_redirects(redirector: str, listener: Listener) -> None:
    client = BigCommerceClient("abc123", "token", redirector, http=shared_http())
    with pytest.raises(RemoteCallError):
        client.get("/v2/store")
    assert listener.connections == 0 and listener.received == b""
