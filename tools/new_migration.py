"""Autogenerate a migration for one feature area's tables.

    python tools/new_migration.py AREA "message"

Writes db/migrations/versions/0002_AREA.py on its own branch off 0001 (each area keeps one file
while unreleased: delete it and run this again after changing that area's models).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from smbc.db.session import alembic_config


def main() -> None:
    area, message = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine(f"sqlite:///{Path(tmp) / 'gen.db'}")
        cfg = alembic_config(engine)
        command.upgrade(cfg, "heads")
        command.revision(
            cfg,
            message=message,
            autogenerate=True,
            rev_id=f"0002_{area}",
            head="0001",
            splice=True,
            branch_label=area,
        )


if __name__ == "__main__":
    main()
