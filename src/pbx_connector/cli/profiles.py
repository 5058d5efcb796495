"""`pbx-connector profile …`: create, change and inspect profiles.

Each command reads its input (arguments, a file, a secret from a hidden prompt or standard
input), makes one call to the application core, and prints what it returns.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import typer

from pbx_connector.cli.base import app, fail, handled, parse_assignments, print_json, state, table
from pbx_connector.errors import PbxConnectorError, UsageError
from pbx_connector.models.profiles import ProfileView, ScheduleView
from pbx_connector.service.profiles import MAX_EXPORT_SIZE

profile_app = typer.Typer(
    help="Create, change and inspect connector profiles.", no_args_is_help=True
)
app.add_typer(profile_app, name="profile")

#: `KEY=-` reads a secret setting like `--set-secret KEY`.
READ_SECRET = "-"


def _read_secrets(values: dict[str, str], keys: Sequence[str], secret_names: set[str]) -> None:
    """Fill in secret settings from a prompt (on a terminal) or standard input: for each
    --set-secret KEY, and each KEY=- of a secret setting. Never from the command line,
    where every local user can read them."""
    wanted = [*keys, *(k for k, v in values.items() if v == READ_SECRET and k in secret_names)]
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
    with handled(hint=_setting_hint):
        values = parse_assignments(settings or [])
        _read_secrets(values, secrets or [], state.app.profiles.secret_setting_names(template))
        created = state.app.profiles.create(name, template, mode, values)
    p = created.profile
    typer.echo(f"Created profile {p.name!r} ({p.template}, mode {p.mode}).")
    for note in created.notes:
        typer.echo(f"note: {note}")


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
    with handled(hint=_set_hint):
        profiles = state.app.profiles
        template = profiles.get(name).template
        values = parse_assignments(assignments or [])
        _read_secrets(values, secrets or [], profiles.secret_setting_names(template))
        if not values:
            raise UsageError("nothing to change: give KEY=VALUE or --set-secret KEY")
        profiles.update(name, values)
    typer.echo(f"Updated profile {name!r}.")


def _print_profile(p: ProfileView) -> None:
    typer.echo(f"profile   {p.name}")
    typer.echo(f"template  {p.template} ({p.source} → {p.target})")
    typer.echo(f"mode      {p.mode}")
    typer.echo("settings:")
    for k, v in p.settings.items():
        typer.echo(f"  {k} = {v}")
    for k in p.secrets_set:
        typer.echo(f"  {k} = (set, hidden)")
    if p.secrets_unreadable:
        typer.echo("  (secrets set, unreadable with this instance key: set them again)")
    typer.echo(f"pre-filter: {p.prefilter or '(none: every row)'}")
    typer.echo("variables:")
    for k, v in p.variables.items():
        typer.echo(f"  {k} = {v}" if v else f"  {k} = (empty: not managed)")
    typer.echo(f"schedule: {_schedule_line(p.schedule)}")


def _setting_hint(exc: PbxConnectorError, form: str = "--set {}=…") -> str | None:
    """How a setting an error names is given on this command line."""
    if not exc.field or exc.field in ("name", "template", "mode"):
        return None
    return "give it with " + form.format(exc.field)


def _set_hint(exc: PbxConnectorError) -> str | None:
    return _setting_hint(exc, "{}=…")


def _schedule_line(schedule: ScheduleView | None) -> str:
    if schedule is None:
        return "(none: runs only when started)"
    zone = f"{schedule.timezone}, the {schedule.timezone_from}'s zone"
    text = f"{schedule.expression} ({zone})"
    if schedule.problem:
        return f"{text}; cannot run: {schedule.problem}"
    text += f"; next run {schedule.next_run}"
    if schedule.failing:
        text += f"; FAILING: its last {schedule.failures} scheduled runs failed"
    return text


def _next_run(schedule: ScheduleView | None) -> str:
    if schedule is None:
        return "-"
    if schedule.problem:
        return "cannot run"
    flag = " (failing)" if schedule.failing else ""
    return f"{schedule.next_run or '-'}{flag}"


@profile_app.command("schedule")
def profile_schedule(
    name: str,
    expression: str = typer.Argument(
        ...,
        metavar="EXPR|off",
        help="every N minutes, every N hours, hourly, daily HH:MM, weekdays HH:MM, "
        "weekly DAY HH:MM, a cron expression ('*/15 * * * *'), or off.",
    ),
    timezone: str | None = typer.Option(
        None,
        "--timezone",
        help="Time zone of the schedule (Europe/Berlin); '' follows the instance's.",
    ),
) -> None:
    """Run a profile by itself (in 'pbx-connector serve'), or stop that with 'off'."""
    with handled():
        p = state.app.schedules.set(name, expression, timezone)
    if p.schedule is None:
        typer.echo(f"Profile {name!r} has no schedule: it runs only when started.")
        return
    typer.echo(f"Schedule of {name!r}: {_schedule_line(p.schedule)}")
    for slot in p.schedule.next_runs[1:]:
        typer.echo(f"  then {slot}")


@profile_app.command("show")
def profile_show(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show a profile: settings, key, pre-filter and variables (never secrets)."""
    with handled():
        p = state.app.profiles.get(name)
    if as_json:
        print_json(p.model_dump(mode="json"))
        return
    _print_profile(p)


@profile_app.command("list")
def profile_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """List profiles."""
    with handled():
        items = state.app.profiles.list()
    if as_json:
        print_json([p.model_dump(mode="json") for p in items])
        return
    table(
        ["NAME", "TEMPLATE", "MODE", "SOURCE", "NEXT RUN"],
        [
            (p.name, p.template, p.mode, p.settings.get("path", ""), _next_run(p.schedule))
            for p in items
        ],
    )


@profile_app.command("delete")
def profile_delete(
    name: str,
    purge: bool = typer.Option(
        False, "--purge", help="Also delete the records the profile imported."
    ),
) -> None:
    """Delete a profile. Its records stay (as if made by hand) unless --purge."""
    with handled():
        deleted = state.app.profiles.delete(name, purge=purge)
    extra = f"; {deleted} records deleted" if purge else "; its records were kept"
    typer.echo(f"Deleted profile {name!r}{extra}.")


@profile_app.command("export")
def profile_export(
    name: str,
    output: Path | None = typer.Option(None, "-o", "--output", help="File (default: stdout)."),
) -> None:
    """Export a profile as JSON. Secrets are never exported."""
    with handled():
        text = state.app.profiles.export(name)
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"{output}: cannot write the export: {exc.strerror}")
    typer.echo(f"Exported profile {name!r} to {output}.", err=True)


def _read_export(file: Path) -> str:
    """The text of an export file ('-': standard input), read no further than an export
    can be long: a wrong file given by mistake must not fill the memory."""
    try:
        if str(file) == "-":
            raw = sys.stdin.buffer.read(MAX_EXPORT_SIZE + 1)
        else:
            with open(file, "rb") as fh:
                raw = fh.read(MAX_EXPORT_SIZE + 1)
    except OSError as exc:
        fail(f"{file}: {exc.strerror}")
    if len(raw) > MAX_EXPORT_SIZE:
        fail(f"{file}: not a profile export (larger than {MAX_EXPORT_SIZE // 1024} KiB)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{file}: not a profile export (not UTF-8 text)")


@profile_app.command("import")
def profile_import(
    file: Path = typer.Argument(..., help="A file made by 'profile export' ('-' for stdin)."),
    name: str | None = typer.Option(None, "--name", help="Another name for the profile."),
) -> None:
    """Create a profile from an export. Secrets must be set again afterwards."""
    text = _read_export(file)
    with handled():
        created = state.app.profiles.import_(text, name, str(file))
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
    with handled():
        if assignments:
            values = parse_assignments(assignments, "FIELD=EXPRESSION")
            variables = state.app.profiles.set_variables(name, values).variables
        else:
            variables = state.app.profiles.get(name).variables
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
    with handled():
        if expression is not None:
            value = state.app.profiles.set_prefilter(name, expression).prefilter
        else:
            value = state.app.profiles.get(name).prefilter
    typer.echo(value or "(none: every row passes)")
