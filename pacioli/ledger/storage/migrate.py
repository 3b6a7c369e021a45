"""Bringing a database's schema up to date with alembic."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def alembic_config(url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    # ConfigParser treats % as interpolation; URLs may carry %-escapes.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    # Keep the caller's logging: env.py would otherwise load alembic.ini's logging setup
    # and replace the process's structured logs. (The `alembic` command line still does.)
    config.attributes["configure_logger"] = False
    return config


def upgrade(url: str, revision: str = "heads") -> None:
    """Apply every migration up to `revision` (default: the newest of every branch)."""
    command.upgrade(alembic_config(url), revision)
