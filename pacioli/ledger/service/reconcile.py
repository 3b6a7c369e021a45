"""Reconciling the ledger with itself: every invariant, checked on a live database.

The checks are SQL (see `pacioli.ledger.storage.invariants`). They run in one read-only
REPEATABLE READ transaction, so they all see one committed state however many writers
are busy, and they never block a writer. Callers may add groups of checks of their own
(`more_checks`, e.g. the payment flows' in `pacioli.reconciliation.flows`): they run in
the same snapshot and report in the same shape, while the ledger knows nothing of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, text

from pacioli.ledger.storage.invariants import (
    CHECKS,
    OVERDUE_CHECKS,
    Break,
    Check,
    Findings,
    count_overdue_rows,
    count_rows,
    find_breaks,
    find_overdue,
)

__all__ = [
    "BREAKS_SUBJECTS_MAX", "Break", "CheckGroup", "CheckResults", "CheckSummary",
    "LedgerReport", "TimeLimits", "check_ledger", "summarize",
]

# At most this many broken transfers or accounts per query are listed; a ledger with more
# is broken enough that the first thousand tell the story.
BREAKS_SUBJECTS_MAX = 1000


@dataclass(frozen=True, slots=True)
class CheckSummary:
    name: str
    description: str
    rows_checked: int
    break_count: int


@dataclass(frozen=True, slots=True)
class CheckResults:
    """What one group of checks found in the snapshot."""

    checks: tuple[CheckSummary, ...]
    breaks: tuple[Break, ...]
    truncated: bool


# A group of checks: run on the snapshot's connection, listing at most `subjects_max`
# subjects per query.
CheckGroup = Callable[[Connection, int], CheckResults]


@dataclass(frozen=True, slots=True)
class TimeLimits:
    """How late the background jobs may fall behind before it counts as a break.

    `pending_grace`: how long after its deadline a hold may stay open (the expiry sweep
    runs every few seconds). `outbox_threshold`: how long an event may wait unsent (the
    relay sends within seconds). `now`: the clock they are measured on (default: now).
    """

    pending_grace: timedelta
    outbox_threshold: timedelta
    now: datetime | None = None


@dataclass(frozen=True, slots=True)
class LedgerReport:
    """What `check_ledger` found; `truncated` when more breaks exist than are listed."""

    checks: tuple[CheckSummary, ...]
    breaks: tuple[Break, ...]
    truncated: bool
    duration_ms: int

    @property
    def clean(self) -> bool:
        return not self.breaks

    def to_dict(self) -> dict[str, Any]:
        return {
            "clean": self.clean,
            "truncated": self.truncated,
            "duration_ms": self.duration_ms,
            "checks": [
                {
                    "check": c.name,
                    "description": c.description,
                    "rows_checked": c.rows_checked,
                    "breaks": c.break_count,
                }
                for c in self.checks
            ],
            "breaks": [
                {"check": b.check, "subject_id": b.subject_id, "detail": b.detail}
                for b in self.breaks
            ],
        }


def check_ledger(
    engine: Engine,
    *,
    subjects_max: int = BREAKS_SUBJECTS_MAX,
    time_limits: TimeLimits | None = None,
    more_checks: Sequence[CheckGroup] = (),
) -> LedgerReport:
    """Check every ledger invariant against one consistent snapshot of the database.

    With `time_limits`, also that no hold outlived its deadline and no outbox event was
    left unsent; `more_checks` run in the same snapshot, after the ledger's own.
    """
    started = time.monotonic()
    groups: list[CheckGroup] = [_invariants]
    if time_limits is not None:
        groups.append(_overdue(time_limits))
    groups.extend(more_checks)
    with _snapshot(engine) as connection:
        results = [group(connection, subjects_max) for group in groups]
    return LedgerReport(
        checks=tuple(summary for result in results for summary in result.checks),
        breaks=tuple(found for result in results for found in result.breaks),
        truncated=any(result.truncated for result in results),
        duration_ms=round((time.monotonic() - started) * 1000),
    )


def summarize(checks: Sequence[Check], counts: dict[str, int], findings: Findings) -> CheckResults:
    """Each check with its rows checked (`counts[check.rows]`) and the breaks it found."""
    break_counts: dict[str, int] = {}
    for found in findings.breaks:
        break_counts[found.check] = break_counts.get(found.check, 0) + 1
    return CheckResults(
        checks=tuple(
            CheckSummary(check.name, check.description, counts[check.rows],
                         break_counts.get(check.name, 0))
            for check in checks
        ),
        breaks=tuple(findings.breaks),
        truncated=findings.truncated,
    )


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only REPEATABLE READ transaction: one committed state, no writer blocked."""
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            connection.execute(text("SET TRANSACTION READ ONLY"))
            yield connection


def _invariants(connection: Connection, subjects_max: int) -> CheckResults:
    counts = count_rows(connection)
    return summarize(CHECKS, counts, find_breaks(connection, subjects_max=subjects_max))


def _overdue(limits: TimeLimits) -> CheckGroup:
    def run(connection: Connection, subjects_max: int) -> CheckResults:
        now = limits.now or datetime.now(UTC)
        findings = find_overdue(
            connection, deadline_before=now - limits.pending_grace,
            created_before=now - limits.outbox_threshold, subjects_max=subjects_max,
        )
        return summarize(OVERDUE_CHECKS, count_overdue_rows(connection), findings)

    return run
