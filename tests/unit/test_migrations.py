from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from smbc.db.base import Base
from smbc.db.models import _import_feature_models
from smbc.db.session import Database


def test_migrations_create_exactly_the_models(tmp_path: Path) -> None:
    """Every model change comes with its migration (tools/new_migration.py)."""
    _import_feature_models()
    db = Database(f"sqlite:///{tmp_path / 'm.db'}")
    db.upgrade()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
