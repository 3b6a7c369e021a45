"""`pacioli ledger …`: maintenance runs of the ledger's own jobs."""

from __future__ import annotations

import typer

from pacioli.cli.common import console, open_engine
from pacioli.ledger import Ledger

app = typer.Typer(no_args_is_help=True, help="Run ledger maintenance jobs.")

EXPIRE_LIMIT_MAX = 100_000


@app.command("expire-pending")
def expire_pending(
    limit: int = typer.Option(1000, "--limit", min=1, max=EXPIRE_LIMIT_MAX,
                              help="Expire at most this many holds."),
) -> None:
    """Release every pending transfer whose deadline has passed (one sweep)."""
    with open_engine() as engine, Ledger(engine) as ledger:
        expired = ledger.expire_pending(limit=limit)
    console.print(f"Expired {len(expired)} pending transfer(s).")
