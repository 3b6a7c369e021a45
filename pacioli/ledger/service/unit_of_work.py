"""The ledger's transaction boundary and its one retry loop.

Every ledger write runs in a SERIALIZABLE transaction through `run_serializable`. A
serialization failure, a deadlock, a unique-key race or a lost connection rolls the
transaction back and runs it again from the start, a bounded number of times with
jittered exponential backoff. Because the idempotency key is checked inside the same
transaction, a retry after an ambiguous commit finds its own first attempt and replays it.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from psycopg import errors as pg_errors
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from pacioli.ledger.domain.errors import LedgerUnavailable
from pacioli.ledger.service import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")

ATTEMPTS_MAX = 12
BACKOFF_BASE_S = 0.002
BACKOFF_MAX_S = 0.2

_RETRYABLE = {
    pg_errors.SerializationFailure: "serialization_failure",
    pg_errors.DeadlockDetected: "deadlock",
    pg_errors.UniqueViolation: "unique_violation",
}


class UnitOfWork:
    """A SERIALIZABLE database transaction that rolls back unless committed."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.connection: Connection | None = None

    def __enter__(self) -> UnitOfWork:
        self.connection = self._engine.connect().execution_options(
            isolation_level="SERIALIZABLE"
        )
        self.connection.begin()
        return self

    def commit(self, statements: Sequence[tuple[str, list]] = ()) -> None:
        """Send `statements` and COMMIT together, in one pipeline (one round trip)."""
        if not statements:
            self.connection.commit()
            return
        driver_connection = self.connection.connection.driver_connection
        with driver_connection.pipeline(), driver_connection.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
            # Committing the driver connection inside the pipeline queues COMMIT behind
            # the writes; SQLAlchemy's commit below then finds nothing left to do.
            driver_connection.commit()
        self.connection.commit()

    def __exit__(self, *exc_info) -> None:
        try:
            self.connection.rollback()  # a no-op after commit
        finally:
            self.connection.close()


def run_serializable(
    engine: Engine,
    work: Callable[[Connection], tuple[T, Sequence[tuple[str, list]]]],
    *,
    attempts_max: int = ATTEMPTS_MAX,
) -> T:
    """Run `work` in a SERIALIZABLE transaction and commit, retrying transient failures.

    `work` reads what it needs and returns its result and the write statements; the
    writes are sent with the COMMIT (see `UnitOfWork.commit`).

    Raises: LedgerUnavailable when the attempts run out; anything else `work` raises.
    """
    started = time.perf_counter()
    for attempt in range(1, attempts_max + 1):
        try:
            with UnitOfWork(engine) as uow:
                result, statements = work(uow.connection)
                uow.commit(statements)
            metrics.commits_total.inc()
            metrics.commit_seconds.observe(time.perf_counter() - started)
            return result
        except (DBAPIError, pg_errors.Error) as error:
            # Statements sent through SQLAlchemy raise DBAPIError; the pipelined writes,
            # sent on the psycopg connection itself, raise psycopg's errors directly.
            reason = _retry_reason(error)
            if reason is None:
                raise
            metrics.retries_total.labels(reason).inc()
            if attempt == attempts_max:
                log.warning("ledger write gave up", extra={"reason": reason, "attempts": attempt})
                raise LedgerUnavailable(f"the ledger is busy ({reason}); try again") from error
            time.sleep(random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt)))
    raise AssertionError("unreachable")


def _retry_reason(error: Exception) -> str | None:
    cause = error.orig if isinstance(error, DBAPIError) else error
    for error_type, reason in _RETRYABLE.items():
        if isinstance(cause, error_type):
            return reason
    if isinstance(cause, pg_errors.OperationalError) or getattr(
        error, "connection_invalidated", False
    ):
        return "connection_lost"
    return None
