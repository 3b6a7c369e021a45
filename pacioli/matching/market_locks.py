"""One process per market: PostgreSQL session advisory locks held while an exchange runs.

A market's book lives in the memory of the process that runs it, and its log is written
by that process alone. A second process starting the same market would build a second
book and log over the first; the lock makes it refuse instead. The locks belong to one
connection kept open while the exchange runs (and unlocked before it goes back to the
pool); if the process dies, PostgreSQL ends its session and with it the locks.

PostgreSQL ends a dead client's session only once its backend has noticed the closed
connection and exited, which takes a moment, and longer on a busy server: a process
restarted at once after a crash can find its own dead session still holding the locks.
So `acquire` keeps trying for a few seconds (`LOCK_WAIT_S`) before it concludes that
another process runs the market; without the wait, a restart that lost this race served
no exchange at all until the next restart.
"""

from __future__ import annotations

import hashlib
import time

from sqlalchemy import Connection, Engine, text

from pacioli.matching.service_errors import ExchangeAlreadyRunning


def lock_key(database: str, schema: str, symbol: str) -> int:
    """A stable signed 64-bit key for the market's lock in this database and schema
    (advisory locks are per server: two Pacioli schemas on one server must not clash)."""
    name = f"pacioli.exchange.market:{database}:{schema}:{symbol}"
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


# How long `acquire` waits for a market's lock held by another session.
LOCK_WAIT_S = 3.0
_RETRY_EVERY_S = 0.05


class MarketLocks:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._connection: Connection | None = None

    def acquire(self, symbols: list[str], *, wait_s: float = LOCK_WAIT_S) -> None:
        """Lock every market, waiting up to `wait_s` for a lock another session holds.

        Raises: ExchangeAlreadyRunning (and holds nothing then).
        """
        connection = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        deadline = time.monotonic() + wait_s
        try:
            database, schema = connection.execute(
                text("SELECT current_database(), current_schema()")
            ).one()
            for symbol in symbols:
                key = lock_key(database, schema, symbol)
                while not connection.execute(
                    text("SELECT pg_try_advisory_lock(:key)"), {"key": key}
                ).scalar():
                    if time.monotonic() >= deadline:
                        raise ExchangeAlreadyRunning(
                            f"another process runs the market {symbol}")
                    time.sleep(_RETRY_EVERY_S)
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
