"""`pbx-connector profile …`: create, change and inspect profiles."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import typer
from sqlalchemy import Connection

from pbx_connector import profiles as profile_service
from pbx_connector.cli.base import (
    app,
    fail,
    handled,
    print_json,
    table,
    tx,
)
from pbx_connector.errors import UsageError
from pbx_connector.store.profiles import (
    delete_profile,
    get_profile,
    insert_profile,
    list_profiles,
    save_profile,
)

profile_app = typer.Typer(
    help="Create, change and inspect connector profiles.", no_args_is_help=True
)
app.add_typer(profile_app, name="profile")

# --- profiles ---------------------------------------------------------------------------


@profile_app.command("create")
def profile_create(
    name: str = typer.Argument(..., help="Profile name."),
    template: str = typer.Option(..., "--template", "-t", help="Template (see: templates)."),
    mode: str = typer.Option(
        "mirror",
        "--mode",
        help="update: create and update; mirror: also remove records "
        "this profile imported that the source no longer has.",
    ),
    settings: list[str] = typer.Option(
        None, "--set", metavar="KEY=VALUE", help="A setting of the template, e.g. path=FILE."
    ),
    secrets: list[str] = typer.Option(
        None,
        "--set-secret",
        metavar="KEY",
        help="A secret setting (e.g. bind_password), read from a prompt or standard input "
        "so that it never shows in the process list. KEY=- in --set does the same.",
    ),
) -> None:
    """Create a profile from a template."""
    with handled():
        values = profile_service.parse_assignments(settings or [])
        _read_secrets(values, secrets or [], profile_service.secret_setting_names(template))
        profile, notes = profile_service.new_profile(name, template, mode, values)
    created = tx(lambda conn: insert_profile(conn, profile))
    typer.echo(f"Created profile {created.name!r} ({created.template}, mode {created.mode}).")
    for note in notes:
        typer.echo(f"note: {note}")


def _read_secrets(values: dict[str, str], keys: Sequence[str], secret_names: set[str]) -> None:
    """Fill in secret settings from a prompt (on a terminal) or standard input: for each
    --set-secret KEY, and each KEY=- of a secret setting."""
    wanted = [*keys, *(k for k, v in values.items() if v == "-" and k in secret_names)]
    for key in wanted:
        if key not in secret_names:
            raise UsageError(f"{key!r} is not a secret setting of this template", field=key)
        if sys.stdin.isatty():
            value: str = typer.prompt(key, hide_input=True)
        else:
            value = sys.stdin.readline().rstrip("\r\n")
        if not value.strip():
            raise UsageError(f"an empty {key} is not allowed", field=key)
        values[key] = value


@profile_app.command("set")
def profile_set(
    name: str,
    assignments: list[str] = typer.Argument(
        None, metavar="KEY=VALUE...", help="Settings to change (mode too)."
    ),
    secrets: list[str] = typer.Option(
        None,
        "--set-secret",
        metavar="KEY",
        help="A secret setting (e.g. bind_password), read from a prompt or standard input. "
        "KEY=- does the same.",
    ),
) -> None:
    """Change settings of a profile."""
    template = tx(lambda conn: get_profile(conn, name)).template
    with handled():
        values = profile_service.parse_assignments(assignments or [])
        _read_secrets(values, secrets or [], profile_service.secret_setting_names(template))
        if not values:
            raise UsageError("nothing to change: give KEY=VALUE or --set-secret KEY")

    def go(conn: Connection) -> None:
        p = get_profile(conn, name)
        profile_service.apply_settings(p, values)
        save_profile(conn, p)

    tx(go)
    typer.echo(f"Updated profile {name!r}.")


@profile_app.command("show")
def profile_show(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show a profile: settings, key, pre-filter and variables (never secrets)."""
    p = tx(lambda conn: get_profile(conn, name))
    data = p.public_dict()
    if as_json:
        print_json(data)
        return
    typer.echo(f"profile   {p.name}")
    typer.echo(f"template  {p.template} ({p.source} → {p.target})")
    typer.echo(f"mode      {p.mode}")
    typer.echo("settings:")
    for k, v in p.settings.items():
        typer.echo(f"  {k} = {v}")
    for k in sorted(p.secrets):
        typer.echo(f"  {k} = (set, hidden)")
    if p.secrets_unreadable:
        typer.echo("  (secrets set, unreadable with this instance key: set them again)")
    typer.echo(f"pre-filter: {p.prefilter or '(none: every row)'}")
    typer.echo("variables:")
    for k, v in p.variables.items():
        typer.echo(f"  {k} = {v}" if v else f"  {k} = (empty: not managed)")


@profile_app.command("list")
def profile_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List profiles."""
    items = tx(list_profiles)
    if as_json:
        print_json([p.public_dict() for p in items])
        return
    table(
        ["NAME", "TEMPLATE", "MODE", "SOURCE"],
        [(p.name, p.template, p.mode, p.settings.get("path", "")) for p in items],
    )


@profile_app.command("delete")
def profile_delete(
    name: str,
    purge: bool = typer.Option(
        False, "--purge", help="Also delete the records the profile imported."
    ),
) -> None:
    """Delete a profile. Its records stay (as if made by hand) unless --purge."""

    def go(conn: Connection) -> int:
        return delete_profile(conn, get_profile(conn, name), purge=purge)

    deleted = tx(go)
    extra = f"; {deleted} records deleted" if purge else "; its records were kept"
    typer.echo(f"Deleted profile {name!r}{extra}.")


@profile_app.command("export")
def profile_export(
    name: str,
    output: Path | None = typer.Option(None, "-o", "--output", help="File (default: stdout)."),
) -> None:
    """Export a profile as JSON. Secrets are never exported."""
    p = tx(lambda conn: get_profile(conn, name))
    text = profile_service.export_profile(p)
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"{output}: cannot write the export: {exc.strerror}")
    typer.echo(f"Exported profile {name!r} to {output}.", err=True)


@profile_app.command("import")
def profile_import(
    file: Path = typer.Argument(..., help="A file made by 'profile export' ('-' for stdin)."),
    name: str | None = typer.Option(None, "--name", help="Another name for the profile."),
) -> None:
    """Create a profile from an export. Secrets must be set again afterwards."""
    limit = profile_service.MAX_EXPORT_SIZE
    try:
        if str(file) == "-":
            raw = sys.stdin.buffer.read(limit + 1)
        else:
            with open(file, "rb") as fh:
                raw = fh.read(limit + 1)
    except OSError as exc:
        fail(f"{file}: {exc.strerror}")
    if len(raw) > limit:
        fail(f"{file}: not a profile export (larger than {limit // 1024} KiB)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{file}: not a profile export (not UTF-8 text)")
    with handled():
        profile = profile_service.import_profile(text, name, str(file))
    created = tx(lambda conn: insert_profile(conn, profile))
    typer.echo(f"Imported profile {created.name!r} ({created.template}).")


@profile_app.command("variables")
def profile_variables(
    name: str,
    assignments: list[str] = typer.Argument(
        None, metavar="[FIELD=EXPRESSION]...", help="Set variables; FIELD= empties one."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show or set a profile's variables (Jinja2 expressions over a row)."""

    def go(conn: Connection) -> dict[str, str]:
        p = get_profile(conn, name)
        if assignments:
            profile_service.set_variables(
                p, profile_service.parse_assignments(assignments, "FIELD=EXPRESSION")
            )
            p = save_profile(conn, p)
        return p.variables

    variables = tx(go)
    if as_json:
        print_json(variables)
        return
    table(["FIELD", "EXPRESSION"], [(k, v or "(empty: not managed)") for k, v in variables.items()])


@profile_app.command("prefilter")
def profile_prefilter(
    name: str,
    expression: str | None = typer.Argument(None, help="Boolean expression; '' clears it."),
) -> None:
    """Show or set a profile's pre-filter; rows for which it is false are skipped."""

    def go(conn: Connection) -> str:
        p = get_profile(conn, name)
        if expression is not None:
            profile_service.set_prefilter(p, expression)
            p = save_profile(conn, p)
        return p.prefilter

    value = tx(go)
    typer.echo(value or "(none: every row passes)")
