"""`pacioli gateways …`: what the payment gateways themselves say (the sandbox's reports)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from pacioli.cli.common import console, fail, open_engine
from pacioli.gateways.sandbox.report import write_report
from pacioli.reconciliation.statement_run import currency_scales

app = typer.Typer(no_args_is_help=True, help="Reports of the payment gateways.")


@app.command("sandbox-report")
def sandbox_report(
    day: datetime | None = typer.Option(None, "--date", formats=["%Y-%m-%d"],
                                        help="The day (UTC) to report; default today."),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Where to write the CSV."),
) -> None:
    """Write the sandbox processor's settlement report for a day (the sandbox_gateway format)."""
    settled_day = day.date() if day else datetime.now(UTC).date()
    with open_engine() as engine:
        scales = currency_scales(engine)
        try:
            written = write_report(engine, settled_day, out, scale_of=scales.__getitem__)
        except OSError as error:
            fail(str(error))
    console.print(f"Sandbox settlement report for {settled_day.isoformat()}: {written.rows:,}"
                  f" rows written to {out}.")
