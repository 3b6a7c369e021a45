"""One process per market: PostgreSQL session advisory locks held while an exchange runs.

A market's book lives in the memory of the process that runs it, and its log is written
by that process alone. A second process starting the same market would build a second
book and log over the first; the lock makes it refuse instead. The locks belong to one
connection kept open while the exchange runs (and unlocked before it goes back to the
pool); if the process dies, PostgreSQL ends its session and with it the locks.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, Engine, text

from pacioli.matching.service_errors import ExchangeAlreadyRunning


def lock_key(database: str, schema: str, symbol: str) -> int:
    """A stable signed 64-bit key for the market's lock in this database and schema
    (advisory locks are per server: two Pacioli schemas on one server must not clash)."""
    name = f"pacioli.exchange.market:{database}:{schema}:{symbol}"
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class MarketLocks:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    def acquire(self, symbols: list[str]) -> None:
        """Raises: ExchangeAlreadyRunning (and holds nothing then)."""
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            database, schema = connection.execute(
                text("SELECT current_database(), current_schema()")
            ).one()
            for symbol in symbols:
                taken = connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"),
                    {"key": lock_key(database, schema, symbol)},
                ).scalar()
                if not taken:
                    raise ExchangeAlreadyRunning(f"another process runs the market {symbol}")
        except BaseException:
            # The connection goes back to the pool, its session alive: unlock first.
            connection.execute(text("SELECT pg_advisory_unlock_all()"))
            connection.close()
            raise
        self._connection = connection

    def release(self) -> None:
        if self._connection is not None:
            try:
                self._connection.execute(text("SELECT pg_advisory_unlock_all()"))
            finally:
                self._connection.close()
                self._connection = None
