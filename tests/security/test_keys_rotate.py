"""`smbc keys rotate`, for real: secrets written under key A, a rotation to "B,A" interrupted half-way
and finished by running the command again, then the app started with only B reads every secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Text, select, type_coerce

from smbc.account.models import SalesmanagoAccount
from smbc.core.config import Settings
from smbc.core.encryption import SecretBox
from smbc.core.runtime import close_runtime, init_runtime
from smbc.db.key_rotation import TableRotation, encrypted_tables, rotate_keys
from smbc.db.models import Store

STORES = 7


class Interrupted(Exception):
    """Stands in for the process being killed between two batches."""


def write_secrets(settings: Settings) -> None:
    db = init_runtime(settings).db
    try:
        with db.session() as session:
            for n in range(STORES):
                store = Store(
                    hash=f"rot{n}",
                    access_token=f"bc-token-{n}",
                    webhook_secret=f"hook-{n}",
                    callback_secret=None if n == 3 else f"callback-{n}",
                )
                session.add(store)
                session.flush()
                if n % 2 == 0:
                    session.add(
                        SalesmanagoAccount(
                            store_id=store.id,
                            endpoint="https://app3.salesmanago.com",
                            client_id=f"client{n}",
                            api_key=f"api-key-{n}",
                            sha=f"sha-{n}",
                            token=f"login-token-{n}",
                            login_email=f"owner{n}@example.com",
                            v3_key=f"v3-{n}",
                            auth_mode="login",
                        )
                    )
    finally:
        close_runtime()


def read_secrets(settings: Settings) -> dict[tuple[str, int, str], Any]:
    """Every EncryptedText value of every table, decrypted with the keys of `settings`."""
    db = init_runtime(settings).db
    try:
        with db.session() as session:
            found = {}
            for table, columns in encrypted_tables():
                (key,) = table.primary_key.columns
                for row in session.execute(select(key, *columns)):
                    for column, value in zip(columns, row[1:], strict=True):
                        found[(table.name, row[0], column.name)] = value
            return found
    finally:
        close_runtime()


def stored_ciphertexts(settings: Settings) -> list[str]:
    db = init_runtime(settings).db
    try:
        with db.session() as session:
            values = []
            for _table, columns in encrypted_tables():
                for row in session.execute(select(*[type_coerce(c, Text) for c in columns])):
                    values += [v for v in row if v is not None]
            return values
    finally:
        close_runtime()


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SMBC_DATABASE_URL": settings.database_url,
        "SMBC_QUEUE_URL": settings.queue_url,
        "SMBC_QUEUE_NAME": settings.queue_name,
        "SMBC_SECRET_KEY": settings.secret_key,
        "SMBC_VAR_DIR": str(settings.var_dir),
    }
    command = [sys.executable, "-c", "from smbc.cli.main import main; main()", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.subprocess
def test_rotation_lets_the_old_key_be_removed(backend_settings: Settings, tmp_path: Path) -> None:
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    only_a = backend_settings.model_copy(update={"secret_key": key_a})
    both = backend_settings.model_copy(update={"secret_key": f"{key_b},{key_a}"})
    only_b = backend_settings.model_copy(update={"secret_key": key_b})
    write_secrets(only_a)
    written = read_secrets(only_a)
    assert written[("stores", 1, "access_token")] == "bc-token-0"
    assert written[("salesmanago_accounts", 1, "v3_key")] == "v3-0"
    with pytest.raises(ValueError):  # without the rotation, B alone cannot read what A wrote
        read_secrets(only_b)

    # Killed after its first batch (two accounts: 8 values): that batch is committed, the rest is not.
    def stop(counts: TableRotation) -> None:
        raise Interrupted

    db = init_runtime(both).db
    try:
        with pytest.raises(Interrupted):
            rotate_keys(db, SecretBox(both.secret_keys), batch_size=2, after_batch=stop)
    finally:
        close_runtime()
    under_b = [SecretBox([key_b]).under_newest_key(v) for v in stored_ciphertexts(both)]
    assert 0 < sum(under_b) < len(under_b)

    rerun = run_cli(both, "keys", "rotate", "--batch-size", "2")
    assert rerun.returncode == 0, rerun.stderr
    assert "salesmanago_accounts: 8 re-encrypted, 8 already under the newest key" in rerun.stdout
    assert "stores: 20 re-encrypted, 0 already under the newest key" in rerun.stdout

    assert read_secrets(only_b) == written
    with pytest.raises(ValueError):  # and the retired key reads nothing any more
        read_secrets(only_a)

    again = run_cli(both, "keys", "rotate")
    assert "stores: 0 re-encrypted, 20 already under the newest key" in again.stdout, again.stdout
