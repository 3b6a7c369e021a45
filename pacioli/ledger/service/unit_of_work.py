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
from dataclasses import dataclass
from typing import TypeVar
from uuid import UUID

from psycopg import errors as pg_errors
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from pacioli.ledger.domain.errors import LedgerUnavailable
from pacioli.ledger.service import metrics
from pacioli.ledger.storage.pipeline import pipeline

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


# Writers queue on one advisory lock per account they touch before their snapshot is
# taken (see `UnitOfWork`). Keys are hashed account ids, taken in ascending order so two
# writers never deadlock; the seed keeps them apart from other applications' keys.
_QUEUE_ON_ACCOUNTS_SQL = (
    "SELECT count(pg_advisory_lock(lock_key)) FROM ("
    "SELECT DISTINCT hashtextextended(account_id::text, 1346454345) AS lock_key FROM ("
    "SELECT unnest(%b::uuid[]) AS account_id"
    " UNION SELECT account_id FROM postings WHERE transfer_id = ANY(%b::uuid[])"
    ") AS touched ORDER BY lock_key) AS ordered"
)
CONTENTION_WINDOW_S = 5.0


@dataclass(frozen=True, slots=True)
class Touches:
    """The accounts a batch will lock: named directly, or through the transfers it resolves."""

    account_ids: list[UUID]
    transfer_ids: list[UUID]


class ContentionWindow:
    """Remembers that writes recently conflicted, so the next ones queue instead of racing."""

    def __init__(self, window_s: float = CONTENTION_WINDOW_S) -> None:
        self._window_s = window_s
        self._until = 0.0

    def seen(self) -> None:
        self._until = time.monotonic() + self._window_s

    def active(self) -> bool:
        return time.monotonic() < self._until


class UnitOfWork:
    """A SERIALIZABLE database transaction that rolls back unless committed.

    With `queue_on`, the transaction first waits for session advisory locks on the
    accounts it will touch, and only then begins. At SERIALIZABLE a writer that waits for
    a row lock fails as soon as the holder commits (its snapshot predates that commit);
    queueing before the snapshot is taken turns that failure into a plain wait. The
    locks are released after COMMIT or ROLLBACK.
    """

    def __init__(self, engine: Engine, *, queue_on: Touches | None = None) -> None:
        self._engine = engine
        self._queue_on = queue_on
        self._holds_locks = False
        self.connection: Connection | None = None

    def __enter__(self) -> UnitOfWork:
        self.connection = self._engine.connect().execution_options(
            isolation_level="SERIALIZABLE"
        )
        if self._queue_on is not None:
            self._outside_transaction(
                _QUEUE_ON_ACCOUNTS_SQL,
                [self._queue_on.account_ids, self._queue_on.transfer_ids],
            )
            self._holds_locks = True
        return self

    def read_outside(self, read: Callable[[object], T]) -> T:
        """Run `read(driver_connection)` in autocommit, before the transaction begins."""
        driver_connection = self.connection.connection.driver_connection
        driver_connection.autocommit = True
        try:
            return read(driver_connection)
        finally:
            driver_connection.autocommit = False

    def begin(self) -> None:
        """Begin the SERIALIZABLE transaction (its snapshot comes with its first query)."""
        self.connection.begin()

    def commit(self, statements: Sequence[tuple[str, list]] = ()) -> None:
        """Send `statements` and COMMIT together, in one pipeline (one round trip).

        Without a transaction begun (a batch of replays only), there is nothing to send.
        """
        if statements:
            driver_connection = self.connection.connection.driver_connection
            with pipeline(driver_connection), driver_connection.cursor() as cursor:
                for sql, params in statements:
                    cursor.execute(sql, params)
                # COMMIT goes as a statement, so the pipeline's exit flushes and collects
                # everything: `connection.commit()` inside a pipeline waited for its result
                # with large writes still unsent and hung (psycopg issue 685's kind).
                # SQLAlchemy's commit below then finds the connection idle: a no-op.
                cursor.execute("COMMIT")
        self.connection.commit()
        self._release_locks()

    def __exit__(self, *exc_info) -> None:
        try:
            self.connection.rollback()  # a no-op after commit
            self._release_locks()
        finally:
            self.connection.close()

    def _release_locks(self) -> None:
        if self._holds_locks:
            self._outside_transaction("SELECT pg_advisory_unlock_all()", [])
            self._holds_locks = False

    def _outside_transaction(self, sql: str, params: list) -> None:
        """Run one statement in autocommit, before or after the transaction proper."""
        self.read_outside(lambda driver_connection: driver_connection.execute(sql, params))


def run_serializable(
    engine: Engine,
    work: Callable[[UnitOfWork], tuple[T, Sequence[tuple[str, list]]]],
    *,
    touches: Touches | None = None,
    contention: ContentionWindow | None = None,
    attempts_max: int = ATTEMPTS_MAX,
) -> T:
    """Run `work` in a SERIALIZABLE transaction and commit, retrying transient failures.

    `work` may read outside the transaction (`uow.read_outside`), begins it
    (`uow.begin()`), reads what it needs and returns its result and the write
    statements; the writes are sent with the COMMIT (see `UnitOfWork.commit`).

    The first attempt runs optimistically; a retry, or any attempt while `contention` is
    active, first queues on the accounts in `touches` (see `UnitOfWork`), so hot accounts
    shared by several processes make writers wait in line rather than fail over and over.

    Raises: LedgerUnavailable when the attempts run out; anything else `work` raises.
    """
    started = time.perf_counter()
    contention = contention or ContentionWindow()
    for attempt in range(1, attempts_max + 1):
        queue = touches is not None and (attempt > 1 or contention.active())
        try:
            with UnitOfWork(engine, queue_on=touches if queue else None) as uow:
                result, statements = work(uow)
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
            if _is_row_conflict(error):
                contention.seen()
            metrics.retries_total.labels(reason).inc()
            if attempt == attempts_max:
                log.warning("ledger write gave up", extra={"reason": reason, "attempts": attempt})
                raise LedgerUnavailable(f"the ledger is busy ({reason}); try again") from error
            time.sleep(random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**attempt)))
    raise AssertionError("unreachable")


def _is_row_conflict(error: Exception) -> bool:
    """A conflict over a row (another writer updated it), which queueing avoids.

    SERIALIZABLE also fails transactions over read/write dependencies it tracks by page;
    those share SQLSTATE 40001 but not this message, and queueing would not help them.
    """
    cause = error.orig if isinstance(error, DBAPIError) else error
    return isinstance(cause, pg_errors.SerializationFailure) and "concurrent update" in str(
        cause
    ) or isinstance(cause, pg_errors.DeadlockDetected)


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
