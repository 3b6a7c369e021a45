"""`pacioli db …`: the database's schema and address."""

from __future__ import annotations

import typer

from pacioli.cli.common import console, displayed_url, errors, is_embedded, open_engine
from pacioli.config import database_url

app = typer.Typer(no_args_is_help=True, help="Migrate the database or show its URL.")


@app.command("upgrade")
def upgrade() -> None:
    """Bring the schema up to date (alembic migrations to the head of every branch)."""
    with open_engine(migrate=True) as engine:
        console.print(f"Schema up to date on {displayed_url(engine)}.")


@app.command("url")
def url() -> None:
    """Print the URL of the database in use (the embedded one is started if needed)."""
    typer.echo(database_url())
    if is_embedded():
        errors.print("note: the embedded PostgreSQL stops when the last process using it"
                     " exits; keep `pacioli serve` running to connect with this URL.")
