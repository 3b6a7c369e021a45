"""What every `pacioli` command shares: the console, the database, and failing cleanly."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn
from urllib.parse import unquote

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError

from pacioli.config import database_url, get_settings
from pacioli.ledger import DomainError, LedgerUnavailable
from pacioli.ledger.storage.database import make_engine
from pacioli.ledger.storage.migrate import upgrade

# soft_wrap: a key or URL printed for copying must never be broken across lines.
console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_FAILURE = 2  # a command that could not run; `reconcile` keeps 1 for "breaks found"


def fail(message: str) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}")
    raise typer.Exit(EXIT_FAILURE)


def displayed_url(engine: Engine) -> str:
    """The engine's database URL for printing: password masked, driver name left out."""
    url = engine.url.render_as_string(hide_password=True)
    return unquote(url.replace("postgresql+psycopg://", "postgresql://", 1))


def is_embedded() -> bool:
    return not get_settings().database_url


@contextmanager
def open_engine(*, migrate: bool = False) -> Iterator[Engine]:
    """An engine on the configured database (started if embedded), optionally migrated.

    A database that cannot be reached or whose schema is missing, a ledger that stays
    busy, and a command the ledger refuses end the command with a message, not a
    traceback.
    """
    try:
        url = database_url()
        if migrate:
            upgrade(url)
        engine = make_engine(url, pool_size=4)
    except OperationalError as error:
        fail(f"cannot reach the database: {_first_line(error)}")
    try:
        yield engine
    except OperationalError as error:
        fail(f"the database failed: {_first_line(error)}")
    except ProgrammingError as error:
        fail(f"{_first_line(error)} (is the schema migrated? run `pacioli db upgrade`)")
    except LedgerUnavailable:
        fail("the ledger stayed busy (conflicts outlasted its retries); try again")
    except DomainError as error:
        fail(f"the ledger refused: {error.code}: {error.detail}")
    finally:
        engine.dispose()


def _first_line(error: DBAPIError) -> str:
    return str(error.orig or error).strip().splitlines()[0]
