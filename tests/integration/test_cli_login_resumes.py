"""Finding 1 of the readiness audit, its second half: `smbc sm login` (either mode) resumes the
deliveries that waited while the store was logged out, as the Account tab's login does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sm_account_helpers import add_store, make_app, store_row
from sqlalchemy import select
from typer.testing import CliRunner

from smbc.cli.main import app as cli_app
from smbc.core.config import Settings, get_settings
from smbc.core.http_server import BackgroundServer
from smbc.db.models import Store
from smbc.realtime.models import WebhookDelivery
from smbc.sandbox.salesmanago import FakeSalesmanago


@pytest.fixture
def fake_sm() -> Iterator[tuple[FakeSalesmanago, str]]:
    sm = FakeSalesmanago()
    with BackgroundServer(sm.app) as server:
        sm.bind(server.url)
        yield sm, server.url


@pytest.fixture
def client(
    fake_sm: tuple[FakeSalesmanago, str], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    _, url = fake_sm
    hosts = {"sm_default_endpoint": url, "sm_v3_url": url, "sm_endpoint_hosts": url}
    app = make_app(settings.model_copy(update=hosts))
    for name, value in {
        "SMBC_DATABASE_URL": settings.database_url,
        "SMBC_QUEUE_URL": settings.queue_url,
        "SMBC_SECRET_KEY": settings.secret_key,
        "SMBC_VAR_DIR": str(settings.var_dir),
        "SMBC_SM_V3_URL": url,
        "SMBC_SM_ENDPOINT_HOSTS": url,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    with TestClient(app) as test_client:
        yield test_client
    get_settings.cache_clear()


def _logged_out_with_a_waiting_delivery(client: TestClient) -> None:
    add_store(client.app)
    with client.app.state.runtime.db.session() as s:
        store = s.scalar(select(Store).where(Store.hash == "abc123"))
        assert store is not None
        store.sync_paused_reason = "logged_out"
        s.add(
            WebhookDelivery(
                store_id=store.id, scope="store/customer/created", hash="h1", created_at=1, status="waiting"
            )
        )


@pytest.mark.parametrize("mode", ["password", "API credentials"])
def test_cli_login_resumes_deliveries_that_waited_while_logged_out(
    client: TestClient, fake_sm: tuple[FakeSalesmanago, str], mode: str
) -> None:
    sm, url = fake_sm
    _logged_out_with_a_waiting_delivery(client)
    login = ["sm", "login", "--store", "abc123", "--endpoint", url]
    if mode == "password":
        login += ["--email", sm.NORMAL.email, "--password", FakeSalesmanago.PASSWORD]
    else:
        login += ["--client-id", sm.NORMAL.client_id, "--api-secret", sm.NORMAL.api_secret]
        login += ["--owner", sm.NORMAL.email]

    result = CliRunner().invoke(cli_app, login)

    assert result.exit_code == 0, result.output
    assert store_row(client.app).sync_paused_reason is None
    with client.app.state.runtime.db.session() as s:
        assert s.scalar(select(WebhookDelivery.status)) == "pending"
