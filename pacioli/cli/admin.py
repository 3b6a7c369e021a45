"""`pacioli admin …`: keys for the ledger-level API."""

from __future__ import annotations

import typer

from pacioli.api.admin_keys import create_admin_key
from pacioli.cli.common import console, open_engine

app = typer.Typer(no_args_is_help=True, help="Manage admin API keys.")


@app.command("create-key")
def create_key(
    name: str = typer.Option(..., "--name", help="Who or what the key is for."),
) -> None:
    """Make an admin key and print it, once: only its hash is stored."""
    if not name.strip():
        raise typer.BadParameter("the name must not be blank", param_hint="--name")
    with open_engine(migrate=True) as engine:
        key_id, key = create_admin_key(engine, name.strip())
    console.print(f"Admin key [bold]{name.strip()}[/bold] created (id {key_id}).")
    console.print("Store it now; it is not shown again:")
    typer.echo(key)
