"""One `pacioli reconcile statement` run, start to end: the service the CLI calls.

1. Checksum the file; refuse a file already reconciled for this source (unless forced).
2. Read every statement line (a malformed file stops here: nothing is recorded).
3. Stream the ledger entries for the statement's period (`ledger_entries.py`).
4. Match (`matching.py`), then record the run and its breaks in one transaction.

The statement's lines are held in memory (the matcher indexes them by reference); the
ledger side is streamed into the matcher. A million lines of each fit well under 2 GiB
(bench/reconcile_bench.py measures it).
"""

from __future__ import annotations

import gc
import getpass
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from pacioli.ledger.domain.errors import InvalidCommand
from pacioli.ledger.storage.tables import assets
from pacioli.reconciliation import runs
from pacioli.reconciliation.ledger_entries import Period, load_entries
from pacioli.reconciliation.statement import (
    LedgerEntry,
    MatchOptions,
    Reconciliation,
    StatementLine,
    StatementMapping,
    read_statement,
    reconcile,
)

PROGRESS_EVERY = 10_000  # lines or entries between progress reports



class InvalidAmountTolerance(InvalidCommand):
    """An amount tolerance is in major units, no finer than the statement's currency allows."""

    code = "invalid_amount_tolerance"


# (phase, count so far): "statement" while reading lines, "ledger" while reading entries.
Progress = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class StatementRequest:
    path: Path
    source: str  # the mapping's name unless --source says otherwise
    mapping: StatementMapping
    mapping_file: str | None  # a custom mapping's path, for the record
    options: MatchOptions  # amount_tolerance_minor is set from amount_tolerance
    amount_tolerance: Decimal  # major units of the statement's currency
    run_by: str
    force: bool = False
    since: date | None = None  # the period, if not the statement's own dates
    until: date | None = None


@dataclass(frozen=True, slots=True)
class StatementOutcome:
    run: runs.Run
    reconciliation: Reconciliation


def current_user() -> str:
    """Who runs the command: the OS user (or "unknown" where the OS cannot say)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def currency_scales(engine: Engine) -> dict[str, int]:
    """Every ledger asset's scale (decimal places), by code."""
    with engine.connect() as connection:
        return dict(connection.execute(select(assets.c.code, assets.c.scale)).all())


def reconcile_statement(
    engine: Engine, request: StatementRequest, *, progress: Progress | None = None,
) -> StatementOutcome:
    """Run the whole reconciliation and record it (module docstring).

    Raises: StatementAlreadyReconciled, MalformedStatement, InvalidLedgerSelection,
    OSError (the file cannot be read).
    """
    started_at = datetime.now(UTC)
    sha256 = runs.file_sha256(request.path)
    if not request.force:
        runs.refuse_if_reconciled(engine, request.source, sha256)
    scales = currency_scales(engine)
    with _no_cycle_collection():
        result = _read_and_match(engine, request, scales, progress)
    run = runs.record_run(engine, runs.NewRun(
        source=request.source, file_name=request.path.name, file_sha256=sha256,
        run_by=request.run_by, forced=request.force, started_at=started_at,
        finished_at=datetime.now(UTC), options=_options(request, result.options, result.period),
        statement_lines=result.line_count, ledger_entries=result.entry_count,
        matched_lines=result.reconciliation.matched_line_count,
        break_count=len(result.reconciliation.breaks), summary=summary(result.reconciliation),
    ), result.reconciliation.breaks)
    return StatementOutcome(run, result.reconciliation)


@dataclass(frozen=True, slots=True)
class _Matched:
    reconciliation: Reconciliation
    options: MatchOptions  # with the tolerance in minor units
    period: Period | None
    line_count: int
    entry_count: int


def _read_and_match(
    engine: Engine, request: StatementRequest, scales: dict[str, int],
    progress: Progress | None,
) -> _Matched:
    """Read every line, stream the ledger entries of their period, match them."""
    lines = list(_counted(read_statement(request.path, request.mapping,
                                         scale_of=scales.__getitem__), "statement", progress))
    options = replace(request.options, amount_tolerance_minor=_tolerance_minor(
        request.amount_tolerance, {scales[line.currency] for line in lines}))
    period = _period(request, lines)
    entries: Iterable[LedgerEntry] = ()
    if period is not None:
        references = ({line.reference for line in lines}
                      if options.date_tolerance_days else frozenset())
        entries = load_entries(
            engine, request.mapping.ledger, period,
            date_tolerance_days=options.date_tolerance_days,
            statement_references=references,
        )
    counter = _Count()
    result = reconcile(lines, counter.of(_counted(entries, "ledger", progress)), options)
    return _Matched(result, options, period, len(lines), counter.value)


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector while millions of rows are built.

    The rows are plain, acyclic values (freed by reference counting), but every 700
    allocations the collector would walk the young ones and now and then all of them:
    with two million rows alive that is about a sixth of the run's time, for nothing.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def summary(result: Reconciliation) -> dict[str, Any]:
    """Breaks by kind and totals per currency, JSON-ready (amounts as minor-unit strings)."""
    kinds = Counter(str(found.kind) for found in result.breaks)
    match_kinds = Counter(str(match.kind) for match in result.matches)
    return {
        "matches_by_kind": dict(sorted(match_kinds.items())),
        "matched_entries": result.matched_entry_count,
        "breaks_by_kind": dict(sorted(kinds.items())),
        "totals": {
            currency: {
                "lines": totals.line_count, "entries": totals.entry_count,
                "statement_minor": str(totals.statement_total_minor),
                "ledger_minor": str(totals.ledger_total_minor),
                "matched_statement_minor": str(totals.matched_statement_minor),
                "matched_ledger_minor": str(totals.matched_ledger_minor),
            }
            for currency, totals in sorted(result.totals.items())
        },
    }


def _tolerance_minor(tolerance: Decimal, scales: set[int]) -> int:
    """The tolerance in minor units of the statement's currencies (which share a scale).

    Raises: InvalidAmountTolerance.
    """
    if not tolerance:
        return 0
    if len(scales) > 1:
        raise InvalidAmountTolerance(
            "the statement mixes currencies of different decimal places; an amount tolerance"
            " in major units would mean different things for them")
    scale = scales.pop() if scales else 0
    minor = tolerance.scaleb(scale)
    if minor != minor.to_integral_value():
        raise InvalidAmountTolerance(
            f"amount tolerance {tolerance} is finer than the currency's {scale} decimal places")
    return int(minor)


def _period(request: StatementRequest, lines: list[StatementLine]) -> Period | None:
    own = Period.of(lines)
    if request.since is None and request.until is None:
        return own
    first = request.since or (own.first_day if own else request.until)
    last = request.until or (own.last_day if own else request.since)
    return Period(first, last)


def _options(request: StatementRequest, options: MatchOptions, period: Period | None
             ) -> dict[str, Any]:
    return {
        "mapping": request.mapping.name, "mapping_file": request.mapping_file,
        "amount_tolerance": str(request.amount_tolerance),
        "amount_tolerance_minor": options.amount_tolerance_minor,
        "date_tolerance_days": options.date_tolerance_days,
        "period": None if period is None else [period.first_day.isoformat(),
                                               period.last_day.isoformat()],
    }


def _counted(items: Iterable[Any], phase: str, progress: Progress | None) -> Iterator[Any]:
    if progress is None:
        yield from items
        return
    count = 0
    for count, item in enumerate(items, start=1):  # noqa: B007 (count is read after)
        if count % PROGRESS_EVERY == 0:
            progress(phase, count)
        yield item
    progress(phase, count)


class _Count:
    """Counts what passes through an iterator (the ledger entries the matcher read)."""

    def __init__(self) -> None:
        self.value = 0

    def of(self, items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            self.value += 1
            yield item
