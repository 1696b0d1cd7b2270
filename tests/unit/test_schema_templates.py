"""The migrated templates each test's database is copied from (tests/support.py): at the migrations'
heads, the schema a migration from scratch makes, and keyed on every file that decides it."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from smbc.core.config import Settings
from smbc.db.base import Base
from smbc.db.models import _import_feature_models
from smbc.db.session import MIGRATIONS_DIR, Database, alembic_config
from support import schema_key


def assert_at_heads_with_the_models(url: str) -> None:
    _import_feature_models()
    database = Database(url)
    try:
        heads = ScriptDirectory.from_config(alembic_config(database.engine)).get_heads()
        with database.engine.connect() as conn:
            context = MigrationContext.configure(conn)
            assert set(context.get_current_heads()) == set(heads)
            assert compare_metadata(context, Base.metadata) == []
    finally:
        database.dispose()


def test_a_test_sqlite_database_starts_migrated(settings: Settings) -> None:
    assert_at_heads_with_the_models(settings.database_url)


def test_a_test_postgres_database_starts_migrated(postgres_url: str) -> None:
    assert_at_heads_with_the_models(postgres_url)


def test_the_start_up_migration_of_a_test_database_runs_nothing(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="alembic")
    database = Database(settings.database_url)
    try:
        database.upgrade()
    finally:
        database.dispose()
    assert any("Context impl" in r.getMessage() for r in caplog.records)  # Alembic did look
    assert not [r.getMessage() for r in caplog.records if "Running upgrade" in r.getMessage()]


def test_the_template_key_follows_every_migration_file(tmp_path: Path) -> None:
    copy = tmp_path / "db" / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(MIGRATIONS_DIR.parent / "types.py", copy.parent / "types.py")
    assert schema_key(copy) == schema_key()
    for changed in [*sorted(copy.rglob("*.py")), copy.parent / "types.py"]:
        original = changed.read_text()
        changed.write_text(original + "\n# changed\n")
        assert schema_key(copy) != schema_key(), changed
        changed.write_text(original)
    (copy / "versions" / "0099_new.py").write_text('revision = "0099"\n')
    assert schema_key(copy) != schema_key()
