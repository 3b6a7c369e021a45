"""Settings, from the environment (prefix PACIOLI_)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import platformdirs
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PACIOLI_")

    # A PostgreSQL URL; with none, Pacioli runs an embedded PostgreSQL under data_dir.
    database_url: str | None = None
    data_dir: Path = platformdirs.user_data_path("pacioli")
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: str = "json"  # or "text"
    # Gather concurrent ledger commands into shared transactions (see docs/architecture.md).
    ledger_batch_size_max: int = 256
    # Writer threads per process (see docs/architecture.md); 1 suits a 2-core machine.
    ledger_writers: int = 1

    # Identity (see docs/users.md).
    # How long a user's bearer token lives after login.
    session_ttl_seconds: int = 24 * 3600
    # argon2id parameters (argon2-cffi's defaults: RFC 9106's low-memory profile). A
    # login rehashes a password stored with other parameters.
    password_hash_time_cost: int = 3
    password_hash_memory_kib: int = 65536
    password_hash_parallelism: int = 4
    # Withdrawals above this many minor units of their asset need a TOTP code.
    second_factor_threshold_minor: int = 100_000
    # At most this long may an old merchant key keep working after a rotation.
    api_key_rotation_grace_seconds_max: int = 7 * 24 * 3600


@lru_cache
def get_settings() -> Settings:
    return Settings()


def database_url(settings: Settings | None = None) -> str:
    """The configured database URL, or the embedded server's (started if needed)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    from pacioli.ledger.storage.database import start_embedded

    return start_embedded(settings.data_dir / "pgdata")
