"""Settings from `SMBC_*` environment variables and `.env`, validated once at start."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

VAR_DIR = Path("var")


class ConfigError(RuntimeError):
    """A configuration value is wrong; the message says which and why."""


def _http_url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an http(s) URL such as https://example.com, got {value!r}")
    return value.rstrip("/")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SMBC_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///var/smbc.db"
    queue_url: str = "sqlite:///var/queue.db"
    # Namespace of the queue's (and the Redis limiter's) keys: deployments sharing one Redis differ here.
    queue_name: str = Field(default="smbc", pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    app_url: str = "http://127.0.0.1:8000"
    bc_client_id: str = ""
    bc_client_secret: str = ""
    bc_api_url: str = "https://api.bigcommerce.com"
    bc_login_url: str = "https://login.bigcommerce.com"
    sm_default_endpoint: str = "app2.salesmanago.pl"
    sm_v3_url: str = "https://api.salesmanago.com"
    # Where a SALESmanago endpoint may point: `*.domain` (https, port 443, under that domain) or an exact
    # origin with scheme (`http://127.0.0.1:9100`, local fakes). Anything else is refused unsent.
    sm_endpoint_hosts: str = "*.salesmanago.com,*.salesmanago.pl"
    # Comma-separated Fernet keys, newest first (MultiFernet rotation); generated into var/ when absent.
    secret_key: str = ""
    workers: Literal["inline", "external"] = "inline"
    inline_worker_threads: int = Field(default=4, ge=1, le=64)
    var_dir: Path = VAR_DIR
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # When set, GET /metrics answers only requests with `Authorization: Bearer <metrics_token>`.
    metrics_token: str = ""
    # Processed deliveries, their payloads and call records older than this many days are pruned.
    retention_days: int = Field(default=30, ge=1, le=3650)
    # Seconds a claimed queued row stays its worker's without a heartbeat; then another worker takes it.
    lease_seconds: float = Field(default=30.0, ge=1, le=600)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError(
                "SMBC_DATABASE_URL must be sqlite:///path or postgresql+psycopg://user@host/db, "
                f"got {value!r}"
            )
        return value

    @field_validator("queue_url")
    @classmethod
    def _queue_url(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "redis://", "rediss://", "memory:")):
            raise ValueError(f"SMBC_QUEUE_URL must be sqlite:///path or redis://host:port/db, got {value!r}")
        return value

    @field_validator("app_url", "bc_api_url", "bc_login_url", "sm_v3_url")
    @classmethod
    def _urls(cls, value: str, info) -> str:
        return _http_url(value, "SMBC_" + info.field_name.upper())

    @field_validator("sm_default_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not value.strip() or " " in value.strip():
            raise ValueError(f"SMBC_SM_DEFAULT_ENDPOINT must be a host name, got {value!r}")
        return value.strip()

    @field_validator("sm_endpoint_hosts")
    @classmethod
    def _endpoint_hosts(cls, value: str) -> str:
        entries = [e.strip() for e in value.split(",") if e.strip()]
        if not entries:
            raise ValueError("SMBC_SM_ENDPOINT_HOSTS must name at least one entry")
        for entry in entries:
            if "://" in entry:
                parts = urlsplit(entry)
                if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
                    raise ValueError(
                        f"SMBC_SM_ENDPOINT_HOSTS entry {entry!r} must be an origin such as "
                        "http://127.0.0.1:9100 (scheme, host, optional port, no path)"
                    )
            elif not entry.startswith("*.") or "." not in entry[2:] or any(c in entry[2:] for c in "*/: "):
                raise ValueError(
                    f"SMBC_SM_ENDPOINT_HOSTS entry {entry!r} must be *.domain (https on port 443 under "
                    "that domain) or an origin with a scheme such as http://127.0.0.1:9100"
                )
        return ",".join(entries)

    @property
    def secret_keys(self) -> list[str]:
        return [k.strip() for k in self.secret_key.split(",") if k.strip()]

    def environment(self) -> dict[str, str]:
        """These settings as the `SMBC_*` variables that give another process the same ones."""
        return {f"SMBC_{name.upper()}": str(value) for name, value in self.model_dump().items()}

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite:")


def ensure_secret_key(settings: Settings) -> Settings:
    """Generate `SMBC_SECRET_KEY` into var/secret_key on first run, and reuse it afterwards."""
    if settings.secret_keys:
        return settings
    from cryptography.fernet import Fernet

    path = settings.var_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode() + "\n")
        path.chmod(0o600)
    return settings.model_copy(update={"secret_key": path.read_text().strip()})


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings; a wrong value raises ConfigError naming the variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "settings"
            lines.append(f"SMBC_{field.upper()}: {err['msg']}")
        raise ConfigError("Invalid configuration:\n  " + "\n  ".join(lines)) from None
    return ensure_secret_key(settings)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def random_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
