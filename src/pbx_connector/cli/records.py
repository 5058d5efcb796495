"""`users`, `phonebook` and `speeddials`: records by hand."""

from __future__ import annotations

import sys

import typer
from sqlalchemy import Connection

from pbx_connector import profiles as profile_service
from pbx_connector.cli.base import (
    MAX_INT,
    app,
    fail,
    print_json,
    table,
    tx,
)
from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import TARGETS, clean_record
from pbx_connector.domain.usernames import fold_username
from pbx_connector.errors import NotFoundError, UsageError
from pbx_connector.store import records as record_store
from pbx_connector.store.settings import get_settings

# --- records ------------------------------------------------------------------------------


def _normaliser(conn: Connection) -> PhoneNormaliser:
    s = get_settings(conn)
    return PhoneNormaliser(s["default_region"], s["outside_line_prefix"])


_LIST_COLUMNS = {
    "users": ("id", "username", "displayname", "extension", "email", "auth", "enabled"),
    "phonebook": ("id", "displayname", "phone", "phone_e164", "organisation", "owner"),
    "speeddials": ("id", "code", "number", "displayname"),
}


def _records_app(target: str, help_text: str) -> typer.Typer:
    sub = typer.Typer(help=help_text, no_args_is_help=True)
    spec = TARGETS[target]
    fields_help = ", ".join(f.name for f in spec.fields if f.kind not in ("secret", "pin"))

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
        items = tx(lambda conn: record_store.list_records(conn, target, owner=owner))
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

        def go(conn: Connection) -> int:
            values = _record_values(target, assignments)
            clean = clean_record(spec, values, _normaliser(conn))
            return record_store.insert_record(conn, target, clean)

        new_id = tx(go)
        typer.echo(f"Added {spec.label} {new_id}.")

    @sub.command("edit")
    def edit_cmd(
        ref: str = typer.Argument(
            ..., help="Record id" + (" or username" if target == "users" else "") + "."
        ),
        assignments: list[str] = typer.Argument(
            None, metavar="FIELD=VALUE...", help=f"Fields: {fields_help}."
        ),
        auth: str | None = typer.Option(None, "--auth", help="internal, ldap or none.")
        if target == "users"
        else None,
    ) -> None:
        """Change fields of a record. An imported record gets its source's values back on
        the next run of its profile."""

        def go(conn: Connection) -> int:
            record_id = _resolve(conn, target, ref)
            values = _record_values(target, assignments or [])
            if auth is not None:
                values["auth"] = auth
            if not values:
                raise UsageError("nothing to change: give FIELD=VALUE")
            clean = clean_record(spec, values, _normaliser(conn), partial=True)
            record_store.update_record(conn, target, record_id, clean)
            return record_id

        record_id = tx(go)
        typer.echo(f"Updated {spec.label} {record_id}.")

    @sub.command("delete")
    def delete_cmd(
        ref: str = typer.Argument(
            ..., help="Record id" + (" or username" if target == "users" else "") + "."
        ),
    ) -> None:
        """Delete a record."""

        def go(conn: Connection) -> int:
            record_id = _resolve(conn, target, ref)
            record_store.delete_record(conn, target, record_id)
            return record_id

        record_id = tx(go)
        typer.echo(f"Deleted {spec.label} {record_id}.")

    return sub


def _record_values(target: str, assignments: list[str]) -> dict[str, str]:
    values = profile_service.parse_assignments(assignments, "FIELD=VALUE")
    spec = TARGETS[target]
    for k in values:
        if k not in spec.field_names:
            raise UsageError(
                f"{k!r} is not a field of a {spec.label}; fields: {', '.join(spec.field_names)}",
                field=k,
            )
        if spec.spec(k).kind in ("secret", "pin"):
            raise UsageError(
                f"{k} is not set on the command line, where others can read "
                f"it: use 'pbx-connector users passwd'",
                field=k,
            )
    return values


def _resolve(conn: Connection, target: str, ref: str) -> int:
    if ref.isascii() and ref.isdigit():
        if int(ref) > MAX_INT:
            raise NotFoundError(f"no {TARGETS[target].label} {ref}")
        return int(ref)
    if target == "users":
        for r in record_store.list_records(conn, "users"):
            if r["username"] == fold_username(ref.strip()):
                return int(r["id"])
    raise NotFoundError(f"no {TARGETS[target].label} {ref!r}")


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
    if not value.strip():
        fail(f"an empty {what} is not allowed")

    def go(conn: Connection) -> int:
        record_id = _resolve(conn, "users", ref)
        clean = clean_record(
            TARGETS["users"], {"pin" if pin else "password": value}, _normaliser(conn), partial=True
        )
        record_store.update_record(conn, "users", record_id, clean)
        return record_id

    tx(go)
    typer.echo(f"Set the {what} of user {ref!r}.")
