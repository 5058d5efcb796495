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
from pbx_connector.store import db as store_db

db_app = typer.Typer(help="The database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

# --- database ---------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest version (runs by itself on first use too)
    and repair what is missing of it (indexes, tables)."""
    with handled():
        engine = store_db.make_engine(store_db.resolve_url(state.db))
        changed = store_db.upgrade(engine)
        repaired = store_db.repair_schema(engine)
    url = store_db.display_url(str(engine.url))
    typer.echo(
        f"{url}: {'upgraded to' if changed else 'already at'} revision {store_db.head_revision()}"
    )
    for problem in repaired:
        typer.echo(f"repaired: {problem}")


@db_app.command("check")
def db_check() -> None:
    """Check that the schema is complete (exit 3 and a list of what is missing if not)."""
    with handled():
        engine = store_db.make_engine(store_db.resolve_url(state.db))
        store_db.upgrade(engine)
        problems = store_db.check_schema(engine)
    url = store_db.display_url(str(engine.url))
    if not problems:
        typer.echo(f"{url}: schema intact at revision {store_db.head_revision()}")
        return
    for problem in problems:
        typer.echo(f"damaged: {problem}", err=True)
    fail(f"{url}: the schema is damaged; 'pbx-connector db upgrade' repairs it", EXIT_FAILED)
