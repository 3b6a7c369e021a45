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
