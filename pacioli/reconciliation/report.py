"""A run's report file (`--report out.json|out.csv`): the run and every break it found.

Written from the recorded run, after it was recorded, so the file carries the break ids
people resolve (`pacioli reconcile breaks resolve ID`) and says exactly what the
database says. Breaks are streamed from the database and written one at a time, so a
run with a million breaks writes its report in constant memory.

Amounts appear twice: in major units with the currency's scale (`"10.50"`, for people
and spreadsheets) and as integer minor units in a string (`"1050"`, for programs; a
string so no JSON reader turns a 128-bit amount into a float).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from pacioli.ledger.domain.errors import InvalidCommand
from pacioli.ledger.domain.money import format_minor
from pacioli.reconciliation.runs import RecordedBreak, Run

FORMATS = ("json", "csv")
CSV_HEADER = (
    "break_id", "run_id", "kind", "reference", "currency", "ledger_currency", "statement_amount",
    "ledger_amount", "statement_amount_minor", "ledger_amount_minor", "line_numbers",
    "entry_ids", "detail", "status",
)


class InvalidReportPath(InvalidCommand):
    """A report file's name ends in .json or .csv, which says its format."""

    code = "invalid_report_path"


def report_format(path: Path) -> str:
    """The report's format from its suffix. Raises: InvalidReportPath."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise InvalidReportPath(f"report {str(path)!r} must end in .json or .csv")
    return suffix


def write_report(
    path: Path, run: Run, breaks: Iterable[RecordedBreak], *, scale_of: Callable[[str], int],
) -> int:
    """Write the report (format from the suffix); return how many breaks it lists.

    Raises: InvalidReportPath; OSError when the file cannot be written.
    """
    kind = report_format(path)
    with open(path, "w", encoding="utf-8", newline="") as file:
        if kind == "json":
            return _write_json(file, run, breaks, scale_of)
        return _write_csv(file, breaks, scale_of)


def run_dict(run: Run) -> dict[str, Any]:
    """The run as JSON-ready values (times ISO-8601)."""
    return {
        "id": run.id, "source": run.source, "file_name": run.file_name,
        "file_sha256": run.file_sha256, "run_by": run.run_by, "forced": run.forced,
        "started_at": run.started_at.isoformat(), "finished_at": run.finished_at.isoformat(),
        "options": run.options, "statement_lines": run.statement_lines,
        "ledger_entries": run.ledger_entries, "matched_lines": run.matched_lines,
        "break_count": run.break_count, "summary": run.summary,
    }


def break_dict(found: RecordedBreak, scale_of: Callable[[str], int]) -> dict[str, Any]:
    return {
        "id": found.id, "run_id": found.run_id, "kind": found.kind,
        "reference": found.reference, "currency": found.currency,
        "ledger_currency": found.ledger_currency,
        "statement_amount": _major(found.statement_amount_minor, found.currency, scale_of),
        "ledger_amount": _major(found.ledger_amount_minor,
                                found.ledger_currency or found.currency, scale_of),
        "statement_amount_minor": _text(found.statement_amount_minor),
        "ledger_amount_minor": _text(found.ledger_amount_minor),
        "line_numbers": list(found.line_numbers), "entry_ids": list(found.entry_ids),
        "detail": found.detail, "status": found.status,
        "resolution_note": found.resolution_note, "resolved_by": found.resolved_by,
        "resolved_at": found.resolved_at.isoformat() if found.resolved_at else None,
    }


def _write_json(
    file: TextIO, run: Run, breaks: Iterable[RecordedBreak], scale_of: Callable[[str], int],
) -> int:
    # The object is written by hand around the breaks so they need not be held in memory.
    head = json.dumps({"run": run_dict(run)}, indent=None)
    file.write(head[:-1] + ', "breaks": [')
    count = 0
    for found in breaks:
        file.write(("\n  " if count == 0 else ",\n  ") + json.dumps(break_dict(found, scale_of)))
        count += 1
    file.write("\n]}\n" if count else "]}\n")
    return count


def _write_csv(file: TextIO, breaks: Iterable[RecordedBreak],
               scale_of: Callable[[str], int]) -> int:
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    count = 0
    for found in breaks:
        row = break_dict(found, scale_of)
        writer.writerow((
            row["id"], row["run_id"], row["kind"], row["reference"], row["currency"],
            row["ledger_currency"] or "", row["statement_amount"] or "",
            row["ledger_amount"] or "",
            row["statement_amount_minor"] or "", row["ledger_amount_minor"] or "",
            " ".join(str(n) for n in found.line_numbers), " ".join(found.entry_ids),
            found.detail, found.status,
        ))
        count += 1
    return count


def _major(amount_minor: int | None, currency: str, scale_of: Callable[[str], int]
           ) -> str | None:
    if amount_minor is None:
        return None
    try:
        return format_minor(amount_minor, scale_of(currency))
    except LookupError:  # a currency the ledger does not know: minor units say it all
        return None


def _text(amount_minor: int | None) -> str | None:
    return None if amount_minor is None else str(amount_minor)
