"""Recording statement reconciliation runs and their breaks, and resolving breaks.

A run is recorded once, at its end, with all its breaks in one database transaction, so
a malformed file (which stops the run while it is read) or a run that dies records
nothing. The same file (by SHA-256) reconciled again for the same source is refused
unless forced: finance reconciles each statement once, and a second run of one file by
accident would double the open breaks. The check runs before the file is read (to fail
fast) and again when the run is recorded, under a transaction-level advisory lock on the
(source, checksum) pair, so two concurrent runs of one file record one run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text, update

from pacioli.ledger.domain.errors import Conflict, InvalidCommand, NotFound
from pacioli.reconciliation.run_tables import reconciliation_breaks, reconciliation_runs

BREAKS_LIST_LIMIT_MAX = 10_000
NOTE_LENGTH_MAX = 2_000
# COPY columns of a break, in order (the rest take their defaults: status 'open').
_BREAK_COLUMNS = ("run_id", "kind", "reference", "currency", "ledger_currency", "line_numbers",
                  "entry_ids", "statement_amount_minor", "ledger_amount_minor", "detail")


class StatementAlreadyReconciled(Conflict):
    """This statement file was reconciled for this source before; pass --force to run it again."""

    code = "statement_already_reconciled"


class BreakNotFound(NotFound):
    """No reconciliation break has this id."""

    code = "break_not_found"


class BreakAlreadyResolved(Conflict):
    """The break was resolved already; its resolution stands."""

    code = "break_already_resolved"


class InvalidResolution(InvalidCommand):
    """A resolution needs a note (at most 2,000 characters) and who resolved the break."""

    code = "invalid_resolution"


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    source: str
    file_name: str
    file_sha256: str
    run_by: str
    forced: bool
    started_at: datetime
    finished_at: datetime
    options: dict[str, Any]
    statement_lines: int
    ledger_entries: int
    matched_lines: int
    break_count: int
    summary: dict[str, Any]


@dataclass(frozen=True, slots=True)
class NewRun:
    """What a finished run records; `id` and the breaks' ids are the database's."""

    source: str
    file_name: str
    file_sha256: str
    run_by: str
    forced: bool
    started_at: datetime
    finished_at: datetime
    options: Mapping[str, Any]
    statement_lines: int
    ledger_entries: int
    matched_lines: int
    break_count: int
    summary: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RecordedBreak:
    id: int
    run_id: int
    kind: str
    reference: str
    currency: str
    ledger_currency: str | None  # a currency_mismatch's ledger currency
    line_numbers: tuple[int, ...]
    entry_ids: tuple[str, ...]
    statement_amount_minor: int | None
    ledger_amount_minor: int | None
    detail: str
    status: str  # open, resolved
    resolution_note: str | None
    resolved_by: str | None
    resolved_at: datetime | None


def file_sha256(path: Path) -> str:
    """The file's SHA-256 in hex, read in chunks (a statement can be hundreds of MB)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def earlier_runs(engine: Engine, source: str, sha256: str) -> list[Run]:
    """Runs of the file with this checksum for this source, oldest first."""
    with engine.connect() as connection:
        return _earlier_runs(connection, source, sha256)


def refuse_if_reconciled(engine: Engine, source: str, sha256: str) -> None:
    """Raises: StatementAlreadyReconciled (naming the earlier run) if there is one."""
    _refuse_earlier(earlier_runs(engine, source, sha256), source)


def record_run(engine: Engine, run: NewRun, breaks: Iterable[Any]) -> Run:
    """Record a finished run and its breaks (matching `Break`s) in one transaction.

    Raises: StatementAlreadyReconciled when the file was recorded meanwhile and the run
    is not forced.
    """
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
                           {"key": f"reconciliation:{run.source}:{run.file_sha256}"})
        if not run.forced:
            _refuse_earlier(_earlier_runs(connection, run.source, run.file_sha256), run.source)
        row = connection.execute(
            reconciliation_runs.insert().values(
                source=run.source, file_name=run.file_name, file_sha256=run.file_sha256,
                run_by=run.run_by, forced=run.forced, started_at=run.started_at,
                finished_at=run.finished_at, options=dict(run.options),
                statement_lines=run.statement_lines, ledger_entries=run.ledger_entries,
                matched_lines=run.matched_lines, break_count=run.break_count,
                summary=dict(run.summary),
            ).returning(*reconciliation_runs.c)
        ).one()
        _copy_breaks(connection, row.id, breaks)
    return _run(row)


def _copy_breaks(connection: Connection, run_id: int, breaks: Iterable[Any]) -> None:
    """COPY the breaks in (a run may find hundreds of thousands); ids follow their order."""
    cursor = connection.connection.driver_connection.cursor()
    statement = f"COPY reconciliation_breaks ({', '.join(_BREAK_COLUMNS)}) FROM STDIN"
    with cursor.copy(statement) as copy:
        for found in breaks:
            copy.write_row((
                run_id, str(found.kind), found.reference, found.currency,
                found.ledger_currency, list(found.line_numbers),
                [str(e) for e in found.entry_ids],
                found.statement_amount_minor, found.ledger_amount_minor, found.detail,
            ))


def get_run(engine: Engine, run_id: int) -> Run | None:
    with engine.connect() as connection:
        row = connection.execute(
            select(reconciliation_runs).where(reconciliation_runs.c.id == run_id)
        ).first()
    return None if row is None else _run(row)


def latest_run_id(engine: Engine) -> int | None:
    with engine.connect() as connection:
        return connection.execute(select(func.max(reconciliation_runs.c.id))).scalar()


def list_breaks(
    engine: Engine, *, run_id: int | None = None, open_only: bool = False,
    limit: int = 1_000,
) -> list[RecordedBreak]:
    """Breaks oldest first, of one run or all, open ones only if asked (at most `limit`)."""
    t = reconciliation_breaks
    query = select(t).order_by(t.c.id).limit(max(1, min(limit, BREAKS_LIST_LIMIT_MAX)))
    if run_id is not None:
        query = query.where(t.c.run_id == run_id)
    if open_only:
        query = query.where(t.c.status == "open")
    with engine.connect() as connection:
        return [_break(row) for row in connection.execute(query)]


def stream_breaks(engine: Engine, run_id: int) -> Iterator[RecordedBreak]:
    """Every break of a run in id order, through a server-side cursor (for reports)."""
    t = reconciliation_breaks
    query = select(t).where(t.c.run_id == run_id).order_by(t.c.id)
    with engine.connect() as connection:
        rows = connection.execution_options(stream_results=True, yield_per=10_000)
        for row in rows.execute(query):
            yield _break(row)


def resolve_break(
    engine: Engine, break_id: int, *, note: str, resolved_by: str,
    now: datetime | None = None,
) -> RecordedBreak:
    """Mark an open break resolved with a note.

    Raises: InvalidResolution, BreakNotFound, BreakAlreadyResolved.
    """
    note = (note or "").strip()
    if not note or len(note) > NOTE_LENGTH_MAX or not (resolved_by or "").strip():
        raise InvalidResolution()
    t = reconciliation_breaks
    with engine.begin() as connection:
        row = connection.execute(
            update(t).where(t.c.id == break_id, t.c.status == "open")
            .values(status="resolved", resolution_note=note, resolved_by=resolved_by.strip(),
                    resolved_at=now or datetime.now(UTC))
            .returning(*t.c)
        ).first()
        if row is not None:
            return _break(row)
        existing = connection.execute(select(t).where(t.c.id == break_id)).first()
    if existing is None:
        raise BreakNotFound(f"no reconciliation break {break_id}")
    raise BreakAlreadyResolved(
        f"break {break_id} was resolved by {existing.resolved_by} at "
        f"{existing.resolved_at.isoformat()}: {existing.resolution_note}"
    )


def _earlier_runs(connection: Connection, source: str, sha256: str) -> list[Run]:
    t = reconciliation_runs
    rows = connection.execute(
        select(t).where(t.c.source == source, t.c.file_sha256 == sha256).order_by(t.c.id)
    )
    return [_run(row) for row in rows]


def _refuse_earlier(runs: list[Run], source: str) -> None:
    if runs:
        first = runs[0]
        raise StatementAlreadyReconciled(
            f"this file (sha256 {first.file_sha256[:12]}…) was reconciled for {source} in run "
            f"{first.id} by {first.run_by} at {first.finished_at.isoformat(timespec='seconds')}"
            f"; pass --force to reconcile it again"
        )


def _run(row: Any) -> Run:
    return Run(**{column.name: getattr(row, column.name) for column in reconciliation_runs.c})


def _break(row: Any) -> RecordedBreak:
    values = {column.name: getattr(row, column.name) for column in reconciliation_breaks.c}
    values["line_numbers"] = tuple(values["line_numbers"])
    values["entry_ids"] = tuple(values["entry_ids"])
    return RecordedBreak(**values)
