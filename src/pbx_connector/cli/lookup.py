"""`pbx-connector lookup NUMBER`: the caller-name lookup a PBX asks `serve` for, from a
shell, to check what a number shows as."""

from __future__ import annotations

import typer

from pbx_connector.cli.base import app, handled, print_json, state
from pbx_connector.errors import NotFoundError
from pbx_connector.models.lookup import LookupResult
from pbx_connector.service.words import lookup_match, lookup_source

#: Exit code when no record has the number (as grep's for "nothing found").
EXIT_UNKNOWN = 1


def _where(found: LookupResult) -> str:
    return f"from {lookup_source(found)}: {lookup_match(found)}"


@app.command("lookup")
def lookup_cmd(
    number: str = typer.Argument(..., help="The caller's number, in any usual form."),
    user: str | None = typer.Option(
        None,
        "--user",
        help="The called user (username or extension): their private phonebook comes first.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (as GET /lookup answers)."),
) -> None:
    """Show the name a PBX gets for NUMBER (GET /lookup): the first match in the user's
    private phonebook, the global phonebook, users, then speed dials. Exit code 1 when no
    record has the number."""
    with handled():
        try:
            found = state.app.lookup.find(number, user=user)
        except NotFoundError as exc:
            typer.echo(exc.message, err=True)
            raise typer.Exit(EXIT_UNKNOWN) from None
    if as_json:
        print_json(found.model_dump(mode="json"))
        return
    typer.echo(found.name)
    typer.echo(_where(found))
