"""`pbx-connector db …`: the schema."""

from __future__ import annotations

import typer

from pbx_connector.cli.base import (
    EXIT_FAILED,
    app,
    fail,
    handled,
    state,
)
from pbx_connector.service import schema

db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest version (runs by itself on first use too)
    and repair what is missing of it (indexes, tables)."""
    with handled():
        done = schema.upgrade(state.db)
    typer.echo(
        f"{done.url}: {'upgraded to' if done.upgraded else 'already at'} revision {done.revision}"
    )
    for problem in done.problems:
        typer.echo(f"repaired: {problem}")


@db_app.command("check")
def db_check() -> None:
    """Check that the schema is complete (exit 3 and a list of what is missing if not)."""
    with handled():
        checked = schema.check(state.db)
    if not checked.problems:
        typer.echo(f"{checked.url}: schema intact at revision {checked.revision}")
        return
    for problem in checked.problems:
        typer.echo(f"damaged: {problem}", err=True)
    fail(
        f"{checked.url}: the schema is damaged; 'pbx-connector db upgrade' repairs it",
        EXIT_FAILED,
    )
