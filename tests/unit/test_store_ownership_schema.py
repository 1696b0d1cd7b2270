"""Every table that holds a store's rows says so with a foreign key to stores.id, so that
`smbc stores purge HASH` (which deletes through those keys) leaves nothing of the store behind."""

from __future__ import annotations

from smbc.db.base import Base
from smbc.db.models import _import_feature_models
from smbc.stores.installation import store_tables


def test_every_store_id_column_references_stores() -> None:
    _import_feature_models()
    referencing = {(table, column) for table, column in store_tables()}
    for table in Base.metadata.sorted_tables:
        if "store_id" in table.c and table.name != "stores":
            assert (table.name, "store_id") in referencing, (
                f"{table.name}.store_id has no foreign key to stores"
            )


def test_rows_of_a_store_go_with_it() -> None:
    _import_feature_models()
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column.table.name == "stores":
                assert fk.ondelete == "CASCADE", f"{table.name}.{fk.parent.name} must be ON DELETE CASCADE"
