"""Both fakes on their own local servers: `with Sandbox(...) as sb:` for tests and demos,
`run_sandbox(...)` for the `smbc sandbox` command."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any, Literal

from smbc.core.clock import Clock, get_clock
from smbc.core.http_server import BackgroundServer
from smbc.sandbox.salesmanago import FakeSalesmanago

SEED_DAYS = 90  # seeded orders are spread over the last 90 days
# The control panel must be a different site from the app (its iframe), as on BigCommerce.
OTHER_SITE = {"127.0.0.1": "localhost", "localhost": "127.0.0.1"}


def _reachable_host(host: str) -> str:
    """The address a browser or the app uses for a server bound to `host`."""
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104


class Sandbox:
    """The fake BigCommerce and the fake SALESmanago, each on a BackgroundServer."""

    def __init__(
        self,
        app_url: str = "http://127.0.0.1:8000",
        client_id: str = "sandbox-client-id",
        client_secret: str = "sandbox-client-secret",  # noqa: S107 - the sandbox app's own
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        bc_port: int | None = None,
        sm_port: int | None = None,
        customers: int = 0,
        orders: int = 0,
    ) -> None:
        self.app_url = app_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.clock = clock
        self.host = host
        self.customers = customers
        self.orders = orders
        # Imported here so the SALESmanago side works even before the BigCommerce fake exists.
        from smbc.sandbox.bigcommerce import FakeBigCommerce

        self.bc = FakeBigCommerce(
            client_id=client_id, client_secret=client_secret, app_url=self.app_url, clock=clock
        )
        self.sm = FakeSalesmanago(clock=clock)
        self._servers = {
            "bc": BackgroundServer(self.bc.app, host=host, port=bc_port),
            "sm": BackgroundServer(self.sm.app, host=host, port=sm_port),
        }
        reachable = _reachable_host(host)
        self.bc_url = f"http://{reachable}:{self._servers['bc'].port}"
        self.sm_url = f"http://{reachable}:{self._servers['sm'].port}"
        panel_host = OTHER_SITE.get(reachable, reachable)
        self.control_panel_url = f"http://{panel_host}:{self._servers['bc'].port}/manage"
        self.bc.bind(self.bc_url)
        self.sm.bind(self.sm_url)
        self._started = False

    def start(self) -> Sandbox:
        self._servers["bc"].start()
        try:
            self._servers["sm"].start()
        except Exception:
            self._servers["bc"].stop()
            raise
        self._started = True
        if self.customers or self.orders:
            end = (self.clock or get_clock()).now().date()
            self.seed(
                customers=self.customers, orders=self.orders, start=end - timedelta(days=SEED_DAYS), end=end
            )
        return self

    def seed(self, *, customers: int, orders: int, start: date, end: date) -> None:
        self.bc.seed(self.bc.default_store_hash, customers=customers, orders=orders, start=start, end=end)

    def stop(self) -> None:
        if self._started:
            self.bc.close()  # first: its webhook thread and held requests would keep the server busy
            for server in self._servers.values():
                server.stop()
            self._started = False

    def refuse_connections(self, service: Literal["bc", "sm"]) -> None:
        """Stop one fake's server, so connecting to it is refused (the fake keeps its state)."""
        server = self._servers[service]
        server.stop()

    def accept_connections(self, service: Literal["bc", "sm"]) -> None:
        """Serve that fake again, on the same port."""
        old = self._servers[service]
        app = self.bc.app if service == "bc" else self.sm.app
        self._servers[service] = BackgroundServer(app, host=self.host, port=old.port).start()

    def app_settings(self) -> dict[str, Any]:
        """Overrides for smbc.core.config.load_settings() that point the app at both fakes."""
        return {
            "bc_api_url": self.bc_url,
            "bc_login_url": self.bc_url,
            "bc_client_id": self.client_id,
            "bc_client_secret": self.client_secret,
            "sm_default_endpoint": self.sm_url,
            "sm_v3_url": self.sm_url,
            "sm_endpoint_hosts": self.sm_url,  # the fake's origin is the one endpoint allowed
        }

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def describe(sb: Sandbox) -> list[str]:
    """What `smbc sandbox` prints: where everything is and how to log in."""
    sm = sb.sm
    return [
        f"Fake BigCommerce:   {sb.bc_url}   (store {sb.bc.default_store_hash})",
        f"  control panel:    {sb.control_panel_url}",
        f"  app client id:    {sb.client_id}   app URL: {sb.app_url}",
        f"Fake SALESmanago:   {sb.sm_url}   (page: {sb.sm_url}/sandbox)",
        f"  login:            {sm.NORMAL.email} / {sm.NORMAL.password}   endpoint {sb.sm_url}",
        f"  API credentials:  client id {sm.NORMAL.client_id}, API secret {sm.NORMAL.api_secret}",
        f"  also:             {sm.TWO_FACTOR.email} (two-factor), {sm.INACTIVE.email} (inactive)",
        "For the app: " + " ".join(f"SMBC_{k.upper()}={v}" for k, v in sb.app_settings().items()),
        "Press Ctrl-C to stop.",
    ]


def run_sandbox(
    *,
    echo: Callable[[str], Any] = print,
    stop: threading.Event | None = None,
    **options: Any,
) -> None:
    """Start both fakes, print their URLs and serve until Ctrl-C (or until `stop` is set)."""
    stop = stop or threading.Event()
    with Sandbox(**options) as sb:
        for line in describe(sb):
            echo(line)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            echo("stopping")
