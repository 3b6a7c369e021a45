"""The `pacioli` command: serve the API, migrate, make admin keys, run jobs, check, demo."""

from __future__ import annotations

import enum
import signal

import typer
import uvicorn
from rich.table import Table

from pacioli.api.observability import configure_logging
from pacioli.cli import admin, db, export, gateways, ledger, qr, reconcile, worker
from pacioli.cli.common import console, displayed_url, open_engine
from pacioli.cli.demo import DemoResult, run_demo
from pacioli.cli.demo_commerce import print_commerce_demo, run_commerce_demo
from pacioli.cli.demo_exchange import print_exchange_demo, run_exchange_demo
from pacioli.cli.demo_payments import DEMO_PASSWORD, PaymentsDemoResult, run_payments_demo
from pacioli.config import get_settings
from pacioli.gc_settings import apply_service_gc_settings
from pacioli.ledger import Ledger, format_minor
from pacioli.ledger.service.reconcile import check_ledger

app = typer.Typer(
    name="pacioli",
    no_args_is_help=True,
    help="Pacioli: a double-entry financial transaction engine on PostgreSQL.",
)
app.add_typer(db.app, name="db")
app.add_typer(admin.app, name="admin")
app.add_typer(ledger.app, name="ledger")
app.add_typer(reconcile.app, name="reconcile")
app.add_typer(export.app, name="export")
app.add_typer(qr.app, name="qr")
app.add_typer(gateways.app, name="gateways")
app.command()(worker.worker)


class LogFormat(enum.StrEnum):
    JSON = "json"
    TEXT = "text"


@app.callback()
def configure(
    log_format: LogFormat | None = typer.Option(
        None, "--log-format",
        help="Logs on stderr: json (default) or text. (env PACIOLI_LOG_FORMAT)",
    ),
    log_level: str | None = typer.Option(
        None, "--log-level", help="DEBUG, INFO, WARNING or ERROR. (env PACIOLI_LOG_LEVEL)"
    ),
) -> None:
    settings = get_settings()
    try:
        configure_logging(log_level or settings.log_level, log_format or settings.log_format)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


@app.command()
def serve(
    host: str | None = typer.Option(None, help="Interface to bind. (env PACIOLI_HOST)"),
    port: int | None = typer.Option(None, min=1, max=65535, help="(env PACIOLI_PORT)"),
) -> None:
    """Migrate the database, then serve the HTTP API (the embedded PostgreSQL if no URL)."""
    # Imported here so that the other commands do not pay for loading the web stack.
    from pacioli.api.app import create_app

    settings = get_settings()
    host, port = host or settings.host, port or settings.port
    with open_engine(migrate=True) as engine:
        console.print(f"Database: {displayed_url(engine)}")
        console.print(f"Pacioli listening on http://{host}:{port} (API docs at /docs)")
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        try:
            web_app = create_app(engine)
            apply_service_gc_settings()
            # Our logging stays the only setup; RequestObservability logs each request once.
            uvicorn.run(web_app, host=host, port=port, log_config=None, access_log=False)
        finally:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Turn SIGTERM into a normal exit.

    Uvicorn shuts down gracefully on SIGTERM and then raises the signal again; with the
    default handler that kills the process before its exit handlers run, and the
    embedded PostgreSQL would be left running.
    """
    raise SystemExit(128 + signum)


@app.command()
def demo() -> None:
    """Fill the database with a small, realistic data set (safe to run again), then check it."""
    with open_engine(migrate=True) as engine:
        with Ledger(engine) as book:
            result = run_demo(book)
            payments = run_payments_demo(engine, book)
            commerce = run_commerce_demo(engine, book)
            exchange = run_exchange_demo(engine, book)
        print_demo(result)
        print_payments_demo(payments)
        print_commerce_demo(commerce)
        print_exchange_demo(exchange)
        report = check_ledger(engine)
    reconcile.print_report(report)
    if not report.clean:
        raise typer.Exit(reconcile.EXIT_BREAKS)


def print_payments_demo(result: PaymentsDemoResult) -> None:
    console.print("Payments demo:")
    for line in result.story:
        console.print(f"  {line}")
    table = Table(title="Wallets and merchant balances", title_justify="left")
    for column in ("Owner", "Currency"):
        table.add_column(column)
    table.add_column("Available", justify="right")
    for balance in result.balances:
        table.add_row(balance.owner, balance.currency,
                      format_minor(balance.available_minor, balance.scale))
    console.print(table)
    console.print(f"Log in to the API as {' or '.join(result.logins)}"
                  f" with the password {DEMO_PASSWORD!r}.")


def print_demo(result: DemoResult) -> None:
    table = Table(title="Demo accounts", title_justify="left")
    for column in ("Name", "Title", "Asset"):
        table.add_column(column)
    for column in ("Balance", "Available"):
        table.add_column(column, justify="right")
    for entry in result.accounts:
        account = entry.account
        table.add_row(entry.name, entry.title, account.asset_code,
                      format_minor(account.balance_minor, entry.scale),
                      format_minor(account.available_minor, entry.scale))
    console.print(table)
    console.print(f"Demo writes: {result.writes_new} new, {result.writes_replayed} replayed"
                  " (idempotency keys demo:…).")
