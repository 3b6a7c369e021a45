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

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from pacioli.ledger.domain.errors import LedgerUnavailable, invariant
from pacioli.ledger.service import metrics
from pacioli.ledger.storage import arrays
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
# Inside a batch's transaction, statements are planned once per connection, not per
# execution as everywhere else (`database._plan_every_execution`): planning the write
# statement and the account lock took ~0.45 ms of the server's ~4 ms per batch of 32
# transfers. These plans cannot go stale the way the key lookup's did (which is why that
# lookup runs before BEGIN): every read in the transaction names its rows by key
# (`id = ANY(…)`, `transfer_id = ANY(…)`) and, with sequential scans off, is planned on
# those keys' indexes whatever the tables' sizes when it was planned. Both settings end
# with the transaction.
_PLAN_ONCE_SQL = (
    "SELECT set_config('plan_cache_mode', 'force_generic_plan', true),"
    " set_config('enable_seqscan', 'off', true)"
)


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
    """One attempt at a batch: a pooled connection on which the batch runs one
    SERIALIZABLE transaction, rolled back unless committed.

    The connection is in autocommit mode and the transaction is begun and ended by
    statements (`begin`, `commit`) sent inside the batch's pipelines, so reads that must
    stay outside the transaction's snapshot (the idempotency keys) travel in the same
    round trip as BEGIN and the account locks, and reads after it (the transfers that
    replays answer with) in the same round trip as COMMIT.

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
        self._pooled = None
        self._begun = False
        self.driver: psycopg.Connection | None = None
        # Set by the work: queues reads to run after COMMIT, in its pipeline, and returns
        # a function that collects them once the pipeline has synced.
        self.after_commit: Callable[[psycopg.Connection], Callable[[], None]] | None = None
        # Set by the work: called once the writes and COMMIT are sent, before their
        # outcome is awaited.
        self.while_committing: Callable[[], None] | None = None

    def __enter__(self) -> UnitOfWork:
        self._pooled = self._engine.raw_connection()
        self.driver = self._pooled.driver_connection
        try:
            self.driver.autocommit = True
            if self._queue_on is not None:
                self._holds_locks = True
                self.driver.execute(
                    _QUEUE_ON_ACCOUNTS_SQL,
                    [arrays.uuids(self._queue_on.account_ids),
                     arrays.uuids(self._queue_on.transfer_ids)],
                )
        except BaseException:
            self.__exit__()  # `with` calls __exit__ only after __enter__ returned
            raise
        return self

    def begin(self) -> None:
        """Begin the transaction (queued in the caller's pipeline, if one is open).

        Its snapshot comes with the first query after it.
        """
        self.driver.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
        self.driver.execute(_PLAN_ONCE_SQL)
        self._begun = True

    def commit(self, statements: Sequence[tuple[str, list]] = ()) -> None:
        """Send `statements`, then COMMIT, then the `after_commit` reads: one round trip.

        With nothing to write (every command of the batch was a replay or refused), the
        COMMIT only ends the reads and releases the row locks. (Never a ROLLBACK statement
        here: psycopg takes one as a sign to forget its prepared statements, and did so
        while later statements of the pipeline still named them.) Without a transaction
        begun, there is nothing to send.
        """
        if not self._begun:
            invariant(not statements, "writes prepared without a transaction begun")
            self._release_locks()
            return
        collect = None
        with pipeline(self.driver), self.driver.cursor() as cursor:
            for sql, params in statements:
                cursor.execute(sql, params)
            # COMMIT goes as a statement, so the pipeline's exit flushes and collects
            # everything (a `commit()` inside a pipeline waited for its result with large
            # writes still unsent and hung: psycopg issue 685's kind).
            cursor.execute("COMMIT")
            if self.after_commit is not None:
                collect = self.after_commit(self.driver)
            if self.while_committing is not None:
                self.while_committing()
        if collect is not None:
            collect()
        self._release_locks()

    def __exit__(self, *exc_info) -> None:
        driver = self.driver
        try:
            if driver.closed or driver.broken:
                self._pooled.invalidate()
                return
            driver.rollback()  # psycopg's own: a no-op when idle, and keeps its caches right
            self._release_locks()
            driver.autocommit = False  # as the pool's other users expect it
        except pg_errors.Error:
            self._pooled.invalidate()
        finally:
            self._pooled.close()

    def _release_locks(self) -> None:
        if self._holds_locks:
            self.driver.execute("SELECT pg_advisory_unlock_all()")
            self._holds_locks = False


def run_serializable(
    engine: Engine,
    work: Callable[[UnitOfWork], tuple[T, Sequence[tuple[str, list]]]],
    *,
    touches: Touches | None = None,
    contention: ContentionWindow | None = None,
    attempts_max: int = ATTEMPTS_MAX,
) -> T:
    """Run `work` in a SERIALIZABLE transaction and commit, retrying transient failures.

    `work` begins the transaction (`uow.begin()`, after any reads that must stay outside
    it), reads what it needs and returns its result and the write statements; the writes
    are sent with the COMMIT (see `UnitOfWork.commit`).

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
            # The batch's statements raise psycopg's errors; taking a connection from
            # SQLAlchemy's pool raises DBAPIError.
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
