"""Plain SQL on the driver's connection, for the hot statements of carts and checkout.

A SQLAlchemy Core statement costs ~0.2-0.3 ms of Python per execution (its cache key,
parameter processing, the result's row objects) besides its round trip; a checkout and
the cart add before it ran ~45 of them. These helpers hand a literal SQL string and its
parameters straight to psycopg, inside the caller's SQLAlchemy transaction (the same
database connection, so the same transaction), and return psycopg's named tuples.

NUMERIC values come back as ints, as `MinorUnits` gives them: every commerce amount is
NUMERIC(39,0); a NUMERIC with a fraction would fail to load, so select none here.

Only for statements whose errors nobody catches by SQLAlchemy's exception types: a
psycopg error raised here is not wrapped (`sqlalchemy.exc.IntegrityError` does not
catch it), and the caller's transaction is rolled back as for any other error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg.adapt import Loader
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection


def rows(connection: Connection, sql: str, params: Mapping[str, Any]) -> list:
    """Every row `sql` returns, as named tuples."""
    with _cursor(connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def first(connection: Connection, sql: str, params: Mapping[str, Any]):
    """The first row `sql` returns (a named tuple), or None."""
    with _cursor(connection) as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def execute(connection: Connection, sql: str, params: Mapping[str, Any]) -> int:
    """Run `sql`; how many rows it changed."""
    with connection.connection.driver_connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


class _IntNumericLoader(Loader):
    """NUMERIC(39,0) as a Python int (exact at any size), not a Decimal."""

    def load(self, data) -> int:
        return int(bytes(data))


def _cursor(connection: Connection):
    cursor = connection.connection.driver_connection.cursor(row_factory=namedtuple_row)
    # On this cursor only: the rest of the connection's users keep psycopg's Decimals.
    cursor.adapters.register_loader("numeric", _IntNumericLoader)
    return cursor
