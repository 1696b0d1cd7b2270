"""deploy/ stays true to the app: every metric the Grafana dashboard draws and the alerts watch is
one the app exports, every variable of the example environment file is one the app (or
prometheus_client) reads, and the systemd units run commands that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smbc.cli.main import app as cli
from smbc.core.config import Settings
from smbc.core.metrics import MULTIPROCESS_DIR_VARIABLE
from smbc.web.app import create_app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
HISTOGRAM_SERIES = re.compile(r"_(bucket|count|sum)$")


def test_every_metric_of_the_dashboard_and_the_alerts_is_exported(settings: Settings) -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "smbc-dashboard.json").read_text())
    alerts = yaml.safe_load((DEPLOY / "prometheus" / "smbc-alerts.yml").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    expressions += [rule["expr"] for group in alerts["groups"] for rule in group["rules"]]
    drawn = {HISTOGRAM_SERIES.sub("", name) for expr in expressions for name in re.findall(r"smbc_\w+", expr)}
    assert len(drawn) >= 10
    with TestClient(create_app(settings, start_workers=False)) as client:
        exported = client.get("/metrics").text
    declared = set(re.findall(r"^# TYPE (smbc_\w+) ", exported, flags=re.M))
    # A counter is declared without its _total suffix.
    missing = {name for name in drawn if name not in declared and name.removesuffix("_total") not in declared}
    assert missing == set()


def test_the_environment_file_names_only_variables_the_app_reads() -> None:
    names = [
        line.split("=", 1)[0]
        for line in (DEPLOY / "smbc.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    known = {f"SMBC_{field.upper()}" for field in Settings.model_fields} | {MULTIPROCESS_DIR_VARIABLE}
    assert set(names) - known == set()
    assert {"SMBC_DATABASE_URL", "SMBC_QUEUE_URL", "SMBC_WORKERS", "SMBC_METRICS_TOKEN"} <= set(names)


def test_the_units_run_commands_that_exist() -> None:
    commands = []
    for unit in sorted((DEPLOY / "systemd").glob("*.service")):
        text = unit.read_text()
        assert "EnvironmentFile=/etc/smbc/smbc.env" in text, unit.name
        assert "User=smbc" in text and "NoNewPrivileges=yes" in text, unit.name
        commands += re.findall(r"^ExecStart=\S+/smbc (.+)$", text, flags=re.M)
    assert len(commands) == 3
    runner = CliRunner()
    for command in commands:
        words = [word for word in command.split() if not word.startswith("%")]
        options = [word for word in words if word.startswith("--")]
        subcommand = [word for word in words if not word.startswith("--") and not word[0].isdigit()]
        if "127.0.0.1" in subcommand:
            subcommand.remove("127.0.0.1")
        help_text = runner.invoke(cli, [*subcommand, "--help"], terminal_width=200).output
        assert "Usage" in help_text, command
        for option in options:
            assert option in help_text, (command, option)
