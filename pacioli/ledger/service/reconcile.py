"""Reconciling the ledger with itself: every invariant, checked on a live database.

The checks are SQL (see `pacioli.ledger.storage.invariants`). They run in one read-only
REPEATABLE READ transaction, so they all see one committed state however many writers
are busy, and they never block a writer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from pacioli.ledger.storage.invariants import CHECKS, Break, count_rows, find_breaks

__all__ = ["BREAKS_SUBJECTS_MAX", "Break", "CheckSummary", "LedgerReport", "check_ledger"]

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


def check_ledger(engine: Engine, *, subjects_max: int = BREAKS_SUBJECTS_MAX) -> LedgerReport:
    """Check every ledger invariant against one consistent snapshot of the database."""
    started = time.monotonic()
    with engine.connect() as connection:
        connection = connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            connection.execute(text("SET TRANSACTION READ ONLY"))
            counts = count_rows(connection)
            findings = find_breaks(connection, subjects_max=subjects_max)
    break_counts: dict[str, int] = {}
    for found in findings.breaks:
        break_counts[found.check] = break_counts.get(found.check, 0) + 1
    checks = tuple(
        CheckSummary(check.name, check.description, counts[check.rows],
                     break_counts.get(check.name, 0))
        for check in CHECKS
    )
    return LedgerReport(
        checks=checks,
        breaks=tuple(findings.breaks),
        truncated=findings.truncated,
        duration_ms=round((time.monotonic() - started) * 1000),
    )
