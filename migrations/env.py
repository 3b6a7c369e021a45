"""Alembic environment: runs migrations on the URL pacioli sets (or the configured one)."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from pacioli.api.admin_keys import metadata as api_metadata
from pacioli.ledger.storage.database import sqlalchemy_url
from pacioli.ledger.storage.tables import metadata as ledger_metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = [ledger_metadata, api_metadata]


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from pacioli.config import database_url

        url = database_url()
    return sqlalchemy_url(url)


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
