"""`smbc --help` documents the exit codes, and the commands keep to them: 1 when the action failed
(no such store, an invalid value: nothing saved), 2 for bad usage (an unknown option)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from smbc.cli.main import app
from smbc.core.config import Settings, get_settings
from smbc.core.runtime import Runtime, close_runtime, init_runtime
from smbc.db.models import Store
from smbc.settings.store_settings import load_store_settings

runner = CliRunner()


@pytest.fixture
def runtime(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    for name in ("database_url", "queue_url", "secret_key"):
        monkeypatch.setenv(f"SMBC_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setenv("SMBC_VAR_DIR", str(settings.var_dir))
    get_settings.cache_clear()
    runtime = init_runtime(settings, migrate=True)
    with runtime.db.session() as s:
        s.add(Store(hash="abc123", status="installed", info={"name": "Shop"}, access_token="t"))
    yield runtime
    close_runtime()
    get_settings.cache_clear()


def test_the_help_lists_every_exit_code_with_its_meaning() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    codes = dict(re.findall(r"\b(0|1|2|130) +(done|the action failed|bad usage|an export interrupted)", text))
    assert codes == {
        "0": "done",
        "1": "the action failed",
        "2": "bad usage",
        "130": "an export interrupted",
    }


def test_the_commands_keep_to_the_documented_codes(runtime: Runtime) -> None:
    assert runner.invoke(app, ["settings", "show", "--store", "abc123"]).exit_code == 0
    assert runner.invoke(app, ["settings", "show", "--store", "nope"]).exit_code == 1
    refused = runner.invoke(app, ["settings", "set", "--store", "abc123", "double_opt_in.email_id=oops"])
    assert refused.exit_code == 1
    with runtime.db.session() as s:
        assert load_store_settings(s, 1).double_opt_in_email_id == ""  # nothing saved
    assert runner.invoke(app, ["settings", "show", "--store", "abc123", "--no-such-option"]).exit_code == 2
