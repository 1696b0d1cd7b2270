from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from smbc.core import encryption
from smbc.core.config import ConfigError, load_settings
from smbc.core.encryption import SecretBox
from smbc.db.models import Store
from smbc.db.session import Database


def test_wrong_database_url_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SMBC_DATABASE_URL"):
        load_settings(database_url="mysql://x", var_dir=tmp_path)


def test_wrong_app_url_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SMBC_APP_URL"):
        load_settings(app_url="not a url", var_dir=tmp_path)


def test_secret_key_generated_once_into_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMBC_SECRET_KEY", raising=False)
    first = load_settings(var_dir=tmp_path, secret_key="")
    second = load_settings(var_dir=tmp_path, secret_key="")
    assert first.secret_keys == second.secret_keys
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_encryption_round_trip_and_rotation() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = SecretBox([old]).encrypt("shpat_123")
    rotated_box = SecretBox([new, old])
    assert rotated_box.decrypt(token) == "shpat_123"
    rotated = rotated_box.rotate(token)
    assert SecretBox([new]).decrypt(rotated) == "shpat_123"
    with pytest.raises(ValueError, match="no configured key"):
        SecretBox([new]).decrypt(token)


def test_database_dump_shows_no_token(tmp_path: Path) -> None:
    encryption.configure([Fernet.generate_key().decode()])
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    db.upgrade()
    with db.session() as s:
        s.add(Store(hash="abc123", access_token="very-secret-token", webhook_secret="hook-secret"))
    raw = (tmp_path / "x.db").read_bytes() + (tmp_path / "x.db-wal").read_bytes()
    assert b"very-secret-token" not in raw and b"hook-secret" not in raw
    with db.session() as s:
        assert s.execute(text("select count(*) from stores")).scalar() == 1
        assert s.query(Store).one().access_token == "very-secret-token"
