"""`pacioli reconcile statement` and `pacioli reconcile breaks …` (registered in reconcile.py).

Exit codes: 0 when the run found at most `--fail-on` breaks (default 0: any break
fails the command, as a morning job wants), 1 when it found more, 2 when it could not
run (a malformed file, a file already reconciled, a bad option).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pacioli.cli.common import console, errors, fail, open_engine
from pacioli.ledger import DomainError, format_minor
from pacioli.reconciliation import runs
from pacioli.reconciliation.report import break_dict, report_format, run_dict, write_report
from pacioli.reconciliation.statement import MatchOptions, StatementMapping
from pacioli.reconciliation.statement_run import (
    StatementOutcome,
    StatementRequest,
    currency_scales,
    current_user,
    reconcile_statement,
)

EXIT_BREAKS = 1
BREAKS_SHOWN_MAX = 20

breaks_app = typer.Typer(no_args_is_help=True, help="List and resolve reconciliation breaks.")


def statement(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True,
                                help="The statement CSV."),
    source: str = typer.Option(..., "--source",
                               help="Who sent it: a shipped mapping's name (sandbox_gateway,"
                                    " generic_bank) or, with --mapping, any name."),
    mapping_file: Path | None = typer.Option(None, "--mapping", exists=True, dir_okay=False,
                                             help="A mapping TOML file for this source."),
    amount_tolerance: str = typer.Option(
        "0", "--amount-tolerance", help="Match amounts this far apart (major units, e.g. 0.01)."),
    date_tolerance_days: int = typer.Option(
        0, "--date-tolerance-days", min=0, max=31, help="Match dates this many days apart."),
    since: datetime | None = typer.Option(None, formats=["%Y-%m-%d"],
                                          help="First day of the period (default: the file's)."),
    until: datetime | None = typer.Option(None, formats=["%Y-%m-%d"],
                                          help="Last day of the period (default: the file's)."),
    report: Path | None = typer.Option(None, "--report",
                                       help="Write every break to this .json or .csv file."),
    fail_on: int = typer.Option(0, "--fail-on", min=0,
                                help="Exit 1 only when more breaks than this are found."),
    force: bool = typer.Option(False, "--force",
                               help="Reconcile a file that was reconciled before, again."),
    by: str | None = typer.Option(None, "--by", help="Who runs it (default: the OS user)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead."),
) -> None:
    """Match a statement against the ledger, record the run and its breaks."""
    if report is not None:
        _checked(lambda: report_format(report))
    mapping = _checked(lambda: StatementMapping.load(mapping_file) if mapping_file
                       else StatementMapping.builtin(source))
    request = StatementRequest(
        path=file, source=source, mapping=mapping,
        mapping_file=str(mapping_file) if mapping_file else None,
        options=MatchOptions(date_tolerance_days=date_tolerance_days),
        amount_tolerance=_tolerance(amount_tolerance),
        run_by=by or current_user(), force=force,
        since=since.date() if since else None, until=until.date() if until else None,
    )
    with open_engine() as engine:
        with _progress(file, quiet=as_json) as progress:
            outcome = _checked(lambda: reconcile_statement(engine, request, progress=progress))
        scales = currency_scales(engine)
        if report is not None:
            write_report(report, outcome.run, runs.stream_breaks(engine, outcome.run.id),
                         scale_of=scales.__getitem__)
        shown = runs.list_breaks(engine, run_id=outcome.run.id, limit=BREAKS_SHOWN_MAX)
    if as_json:
        typer.echo(json.dumps({"run": run_dict(outcome.run), "fail_on": fail_on,
                               "passed": outcome.run.break_count <= fail_on}))
    else:
        _print_outcome(outcome, shown, scales, report)
    if outcome.run.break_count > fail_on:
        raise typer.Exit(EXIT_BREAKS)


@breaks_app.command("list")
def list_breaks(
    run_id: int | None = typer.Option(None, "--run", help="Only this run's breaks."),
    open_only: bool = typer.Option(False, "--open", help="Only breaks not resolved yet."),
    limit: int = typer.Option(200, min=1, max=runs.BREAKS_LIST_LIMIT_MAX),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead."),
) -> None:
    """Breaks found by reconciliation runs, oldest first."""
    with open_engine() as engine:
        found = runs.list_breaks(engine, run_id=run_id, open_only=open_only, limit=limit)
        scales = currency_scales(engine)
    if as_json:
        typer.echo(json.dumps({"breaks": [break_dict(b, scales.__getitem__) for b in found]}))
        return
    if not found:
        console.print("No breaks.")
        return
    console.print(_breaks_table(found, scales, title="Breaks"))


@breaks_app.command("resolve")
def resolve(
    break_id: int = typer.Argument(..., help="The break's id (from `breaks list` or a report)."),
    note: str = typer.Option(..., "--note", help="What was found and done."),
    by: str | None = typer.Option(None, "--by", help="Who resolves it (default: the OS user)."),
) -> None:
    """Mark a break resolved with a note."""
    with open_engine() as engine:
        resolved = _checked(lambda: runs.resolve_break(engine, break_id, note=note,
                                                       resolved_by=by or current_user()))
    console.print(f"Break {resolved.id} ({resolved.kind}, {resolved.reference}) resolved by"
                  f" {resolved.resolved_by}.")


def _checked(call):
    """Run `call`; an expected rejection ends the command with its message (exit 2)."""
    try:
        return call()
    except DomainError as error:
        fail(f"{error.code}: {error.detail}")
    except OSError as error:
        fail(str(error))


def _tolerance(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise typer.BadParameter(f"{text!r} is not a non-negative amount such as 0.01",
                                 param_hint="--amount-tolerance")
    return value


@contextmanager
def _progress(file: Path, *, quiet: bool) -> Iterator:
    """A progress bar on stderr while the statement and the ledger are read."""
    if quiet:
        yield None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=errors, transient=True) as bar:
        lines = bar.add_task("Reading statement", total=_line_count(file))
        entries = bar.add_task("Reading ledger", total=None, visible=False)

        def report(phase: str, count: int) -> None:
            if phase == "statement":
                bar.update(lines, completed=count)
            else:
                bar.update(entries, completed=count, visible=True)

        yield report


def _line_count(file: Path) -> int:
    """Rows in the file, less the header (a quoted field spanning lines counts twice)."""
    count = 0
    with open(file, "rb") as raw:
        while chunk := raw.read(1 << 20):
            count += chunk.count(b"\n")
    return max(count - 1, 0)


def _print_outcome(outcome: StatementOutcome, shown: list[runs.RecordedBreak],
                   scales: dict[str, int], report: Path | None) -> None:
    run = outcome.run
    summary = Table(title=f"Statement reconciliation — run {run.id} ({run.source},"
                          f" {run.file_name})", title_justify="left")
    summary.add_column("")
    summary.add_column("Count", justify="right")
    summary.add_row("Statement lines", f"{run.statement_lines:,}")
    summary.add_row("Ledger entries", f"{run.ledger_entries:,}")
    summary.add_row("Matched lines", f"[green]{run.matched_lines:,}[/green]")
    for kind, count in run.summary["matches_by_kind"].items():
        summary.add_row(f"  matches {kind.replace('_', ' ')}", f"{count:,}")
    by_kind = run.summary["breaks_by_kind"]
    for kind in ("missing_in_ledger", "missing_in_statement", "amount_mismatch",
                 "currency_mismatch", "duplicate"):
        count = by_kind.get(kind, 0)
        style = "red" if count else "green"
        summary.add_row(kind.replace("_", " ").capitalize(), f"[{style}]{count:,}[/{style}]")
    console.print(summary)
    console.print(_totals_table(run, scales))
    if shown:
        more = run.break_count - len(shown)
        title = "Breaks" + (f" (first {len(shown)}; {more:,} more)" if more > 0 else "")
        console.print(_breaks_table(shown, scales, title=title))
    if report is not None:
        console.print(f"Report: {report} (every break).")
    verdict = ("[green]Clean:[/green] every line matched." if run.break_count == 0
               else f"[red]{run.break_count:,} breaks[/red] recorded in run {run.id}"
                    " (`pacioli reconcile breaks list --run"
                    f" {run.id}`).")
    console.print(verdict)


def _totals_table(run: runs.Run, scales: dict[str, int]) -> Table:
    table = Table(title="Totals per currency", title_justify="left")
    table.add_column("Currency")
    for column in ("Lines", "Entries", "Statement total", "Ledger total", "Matched",
                   "Difference"):
        table.add_column(column, justify="right")
    for currency, values in run.summary["totals"].items():
        scale = scales.get(currency, 0)
        statement, ledger = int(values["statement_minor"]), int(values["ledger_minor"])
        difference = statement - ledger
        style = "red" if difference else "green"
        table.add_row(
            currency, f"{values['lines']:,}", f"{values['entries']:,}",
            format_minor(statement, scale), format_minor(ledger, scale),
            format_minor(int(values["matched_statement_minor"]), scale),
            f"[{style}]{format_minor(difference, scale)}[/{style}]",
        )
    return table


def _breaks_table(found: list[runs.RecordedBreak], scales: dict[str, int], *, title: str
                  ) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("Id", no_wrap=True)
    table.add_column("Run", no_wrap=True)
    table.add_column("Kind", no_wrap=True)
    table.add_column("Reference", overflow="fold")
    table.add_column("Currency", no_wrap=True)
    table.add_column("Statement", justify="right")
    table.add_column("Ledger", justify="right")
    for column in ("Lines", "Status", "Detail"):
        table.add_column(column, overflow="fold")
    for b in found:
        scale = scales.get(b.currency, 0)
        table.add_row(
            str(b.id), str(b.run_id), b.kind, b.reference,
            b.currency + (f"/{b.ledger_currency}" if b.ledger_currency else ""),
            "" if b.statement_amount_minor is None else format_minor(b.statement_amount_minor,
                                                                      scale),
            "" if b.ledger_amount_minor is None else format_minor(
                b.ledger_amount_minor, scales.get(b.ledger_currency or b.currency, 0)),
            " ".join(str(n) for n in b.line_numbers[:5]) + (" …" if len(b.line_numbers) > 5
                                                             else ""),
            b.status if b.status == "open" else f"resolved by {b.resolved_by}", b.detail,
        )
    return table
