"""`users`, `phonebook` and `speeddials`: records by hand.

Each command reads its arguments, calls one function of `state.app.records`, and prints
what it returns; the rules are the core's (`service.records`).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from pbx_connector.cli.base import app, handled, parse_assignments, print_json, state, table
from pbx_connector.errors import UsageError
from pbx_connector.models.records import Record
from pbx_connector.service.records import record_target

_LIST_COLUMNS = {
    "users": ("id", "username", "displayname", "extension", "email", "auth", "enabled"),
    "phonebook": ("id", "displayname", "phone", "phone_e164", "organisation", "owner"),
    "speeddials": ("id", "code", "number", "displayname"),
}


def _records_app(target: str, help_text: str) -> typer.Typer:
    sub = typer.Typer(help=help_text, no_args_is_help=True)
    info = record_target(target)
    fields_help = ", ".join(info.fields)
    ref_help = "Record id" + (" or username" if target == "users" else "") + "."

    @sub.command("list")
    def list_cmd(
        owner: str | None = typer.Option(
            None, "--owner", help="Only this user's private phonebook ('' for the global one)."
        )
        if target == "phonebook"
        else None,
        as_json: bool = typer.Option(False, "--json"),
    ) -> None:
        """List records with their origin."""
        with handled():
            page = state.app.records.list(target, owner=owner, limit=None)
        items = [_shown(r) for r in page.items]
        if as_json:
            print_json(items)
            return
        cols = _LIST_COLUMNS[target]
        table(
            [c.upper() for c in (*cols, "origin")],
            [
                [
                    *(i.get(c) for c in cols),
                    f"{i['origin']['profile']}" if i["origin"] else "by hand",
                ]
                for i in items
            ],
        )

    @sub.command("add")
    def add_cmd(
        assignments: list[str] = typer.Argument(
            ..., metavar="FIELD=VALUE...", help=f"Fields: {fields_help}."
        ),
    ) -> None:
        """Add a record by hand."""
        with handled(), _secret_hint(target):
            record = state.app.records.add(target, _assignments(assignments))
        typer.echo(f"Added {info.label} {record.id}.")

    @sub.command("edit")
    def edit_cmd(
        ref: str = typer.Argument(..., help=ref_help),
        assignments: list[str] = typer.Argument(
            None, metavar="FIELD=VALUE...", help=f"Fields: {fields_help}."
        ),
        auth: str | None = typer.Option(None, "--auth", help="internal, ldap or none.")
        if target == "users"
        else None,
    ) -> None:
        """Change fields of a record. An imported record gets its source's values back on
        the next run of its profile."""
        with handled(), _secret_hint(target):
            values = _assignments(assignments or [])
            if auth is not None:
                values["auth"] = auth
            with _hint_when(not values, "give FIELD=VALUE"):
                result = state.app.records.edit(target, ref, values)
        typer.echo(f"Updated {info.label} {result.record.id}.")
        for warning in result.warnings:
            typer.echo(f"warning: {warning}", err=True)

    @sub.command("delete")
    def delete_cmd(ref: str = typer.Argument(..., help=ref_help)) -> None:
        """Delete a record."""
        with handled():
            record = state.app.records.delete(target, ref)
        typer.echo(f"Deleted {info.label} {record.id}.")

    return sub


def _shown(record: Record) -> dict[str, Any]:
    """A record as the JSON output and the tables show it."""
    return record.model_dump(mode="json")


def _assignments(items: list[str]) -> dict[str, str]:
    return parse_assignments(items, "FIELD=VALUE")


@contextmanager
def _secret_hint(target: str) -> Iterator[None]:
    """A secret given as FIELD=VALUE is refused by the core; on a command line the
    reason is that anyone can read it in the process list, and there is a command for
    it."""
    secrets = record_target(target).secret_fields
    try:
        yield
    except UsageError as exc:
        if type(exc) is not UsageError or exc.field not in secrets:
            raise
        raise UsageError(
            f"{exc.field} is not set on the command line, where others can read it: "
            "use 'pbx-connector users passwd'",
            field=exc.field,
        ) from None


@contextmanager
def _hint_when(condition: bool, hint: str) -> Iterator[None]:
    """Add the command line's way out to a usage error of the core (not to a record
    that is not found)."""
    try:
        yield
    except UsageError as exc:
        if not condition or type(exc) is not UsageError:
            raise
        raise UsageError(f"{exc.message}: {hint}", field=exc.field) from None


app.add_typer(_records_app("phonebook", "Global and private phonebook entries."), name="phonebook")
users_app = _records_app("users", "Users of the phone system.")
app.add_typer(users_app, name="users")
app.add_typer(_records_app("speeddials", "Speed dials."), name="speeddials")


@users_app.command("passwd")
def users_passwd(
    ref: str = typer.Argument(..., help="Username or id."),
    pin: bool = typer.Option(False, "--pin", help="Set the PIN instead of the password."),
) -> None:
    """Set a user's local password (or PIN): prompted, or read from standard input."""
    what = "PIN" if pin else "password"
    if sys.stdin.isatty():
        value = typer.prompt(f"New {what}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    with handled():
        state.app.records.set_secret(ref, "pin" if pin else "password", value)
    typer.echo(f"Set the {what} of user {ref!r}.")
