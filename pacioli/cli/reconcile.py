"""`pacioli reconcile …`: check the stored ledger against its own invariants."""

from __future__ import annotations

import json
from datetime import timedelta

import typer
from rich.table import Table

from pacioli.cli import statements
from pacioli.cli.common import console, open_engine
from pacioli.ledger.service.reconcile import (
    BREAKS_SUBJECTS_MAX,
    LedgerReport,
    TimeLimits,
    check_ledger,
)
from pacioli.reconciliation.flows import flow_checks

app = typer.Typer(
    no_args_is_help=True,
    help="Check the ledger and its flows, match external statements, resolve breaks.",
)
# Statements against the ledger, and their breaks: pacioli/cli/statements.py.
app.command("statement")(statements.statement)
app.add_typer(statements.breaks_app, name="breaks")

EXIT_BREAKS = 1


@app.command("ledger")
def reconcile_ledger(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead."),
    pending_grace_seconds: int = typer.Option(
        300, min=0, help="How long past its deadline a hold may stay open (the expiry sweep"
        " releases it)."),
    outbox_threshold_seconds: int = typer.Option(
        300, min=0, help="How long an outbox event may wait unsent (the relay sends it)."),
) -> None:
    """Check every transfer, posting, account and hold, the background jobs' lag, and
    every payment flow's records against their ledger transfers; exit 1 on any break."""
    limits = TimeLimits(pending_grace=timedelta(seconds=pending_grace_seconds),
                        outbox_threshold=timedelta(seconds=outbox_threshold_seconds))
    with open_engine() as engine:
        report = check_ledger(engine, time_limits=limits, more_checks=[flow_checks()])
    if as_json:
        typer.echo(json.dumps(report.to_dict()))
    else:
        print_report(report)
    if not report.clean:
        raise typer.Exit(EXIT_BREAKS)


def print_report(report: LedgerReport) -> None:
    """A summary table of the checks, then the breaks, if any."""
    summary = Table(title="Ledger reconciliation", title_justify="left")
    summary.add_column("Check")
    summary.add_column("Rows checked", justify="right")
    summary.add_column("Breaks", justify="right")
    for check in report.checks:
        style = "red" if check.break_count else "green"
        summary.add_row(check.name, f"{check.rows_checked:,}",
                        f"[{style}]{check.break_count:,}[/{style}]")
    console.print(summary)
    if report.clean:
        console.print(f"[green]Clean:[/green] {len(report.checks)} checks passed"
                      f" in {report.duration_ms} ms.")
        return
    breaks = Table(title="Breaks", title_justify="left")
    breaks.add_column("Check", style="red")
    breaks.add_column("Subject id", overflow="fold")
    breaks.add_column("Detail", overflow="fold")
    for found in report.breaks:
        breaks.add_row(found.check, found.subject_id, found.detail)
    console.print(breaks)
    capped = (f" (listing capped at {BREAKS_SUBJECTS_MAX:,} subjects per query)"
              if report.truncated else "")
    console.print(f"[red]{len(report.breaks):,} breaks found{capped}.[/red]")
