"""`pacioli export …`: the ledger as a file for accounting tools (Beancount, ledger, hledger)."""

from __future__ import annotations

from pathlib import Path

import typer

from pacioli.cli.common import console, fail, open_engine
from pacioli.reconciliation.export import (
    BEANCOUNT_DIGITS,
    ExportFormat,
    ExportSummary,
    ExportWindow,
    InvalidExportWindow,
    UnknownOperatingCurrency,
    export_ledger,
)

app = typer.Typer(no_args_is_help=True, help="Export the ledger for accounting tools.")

OUT_HELP = "The file to write (replaced whole, only once the export has succeeded)."
SINCE_HELP = ("Start at this date or time (UTC unless it names a zone); balances from"
              " before it are carried in as one opening transaction.")
UNTIL_HELP = "End with this day (a date) or instant (a time); later transfers are left out."


@app.command("beancount")
def beancount(
    out: Path = typer.Option(..., "--out", dir_okay=False, help=OUT_HELP),
    since: str | None = typer.Option(None, "--since", help=SINCE_HELP),
    until: str | None = typer.Option(None, "--until", help=UNTIL_HELP),
    format: ExportFormat = typer.Option(
        ExportFormat.BEANCOUNT, "--format",
        help="beancount, or ledger for a journal that ledger-cli and hledger read.",
    ),
    operating_currency: list[str] = typer.Option(
        [], "--operating-currency", help="Beancount's operating_currency option (repeatable)."
    ),
) -> None:
    """Write the ledger as a Beancount file (or, with --format ledger, a journal)."""
    run_export(out, since, until, format, operating_currency)


@app.command("ledger")
def ledger_journal(
    out: Path = typer.Option(..., "--out", dir_okay=False, help=OUT_HELP),
    since: str | None = typer.Option(None, "--since", help=SINCE_HELP),
    until: str | None = typer.Option(None, "--until", help=UNTIL_HELP),
) -> None:
    """Write the ledger as a ledger-cli/hledger journal (the same as beancount --format ledger)."""
    run_export(out, since, until, ExportFormat.LEDGER, [])


def run_export(
    out: Path, since: str | None, until: str | None, format: ExportFormat,
    operating_currencies: list[str],
) -> None:
    try:
        window = ExportWindow.parse(since, until)
    except InvalidExportWindow as error:
        fail(error.detail)
    if not out.parent.is_dir():
        fail(f"the directory {out.parent} does not exist")
    with open_engine() as engine:
        try:
            summary = export_ledger(engine, out, format=format, window=window,
                                    operating_currencies=tuple(operating_currencies))
        except UnknownOperatingCurrency as error:
            fail(error.detail)
    print_summary(summary)


def print_summary(summary: ExportSummary) -> None:
    console.print(
        f"Wrote {summary.path} ({summary.format}): {summary.commodities} commodities,"
        f" {summary.accounts} accounts, {summary.transactions:,} transactions"
        f" ({summary.postings:,} postings), {summary.assertions} balance assertions"
        + (f" on {summary.assertion_date}" if summary.assertion_date else "")
        + (f", {summary.opening_balances} opening balances" if summary.opening_balances else "")
        + "."
    )
    if summary.wide_amounts and summary.format is ExportFormat.BEANCOUNT:
        console.print(
            f"[yellow]warning:[/yellow] {summary.wide_amounts} amounts have more than"
            f" {BEANCOUNT_DIGITS} significant digits; Beancount adds amounts at that"
            " precision and may round them (hledger and ledger-cli do not)."
        )
