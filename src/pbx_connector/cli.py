"""The `pbx-connector` command line.

Exit codes: 0 ok, 1 changes pending (with `sync --check`), 2 usage, 3 run failed or
aborted. Errors are printed as one line on standard error; JSON goes to standard output.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from pbx_connector import profiles as profile_service
from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import TARGETS, clean_record
from pbx_connector.domain.usernames import fold_username
from pbx_connector.errors import NotFoundError, PbxConnectorError, UsageError
from pbx_connector.sources.registry import open_source
from pbx_connector.store import db as store_db
from pbx_connector.store import records as record_store
from pbx_connector.store import runs as run_store
from pbx_connector.store.profiles import (
    delete_profile,
    get_profile,
    insert_profile,
    list_profiles,
    save_profile,
)
from pbx_connector.store.settings import DEFAULTS as SETTING_DEFAULTS
from pbx_connector.store.settings import get_settings, set_setting
from pbx_connector.sync import report as words
from pbx_connector.sync.runner import Progress as RunProgress
from pbx_connector.sync.runner import run_profile
from pbx_connector.templates import TEMPLATES, all_settings, get_template

EXIT_PENDING = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
#: The largest id or count the stores take (a signed 64-bit integer).
MAX_INT = 2**63 - 1

app = typer.Typer(
    help="Keep a phone system's users, phonebooks and speed dials in sync with CSV files "
    "and directories.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
profile_app = typer.Typer(
    help="Create, change and inspect connector profiles.", no_args_is_help=True
)
db_app = typer.Typer(help="The database.", no_args_is_help=True)
run_app = typer.Typer(help="Past runs and run locks.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")
app.add_typer(db_app, name="db")
app.add_typer(run_app, name="run")

T = TypeVar("T")


class State:
    def __init__(self, db: str | None) -> None:
        self.db = db
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = store_db.open_store_engine(self.db)
            for warning in store_db.permission_warnings(str(self._engine.url)):
                typer.echo(f"warning: {warning}", err=True)
        return self._engine


_state = State(None)


@app.callback()
def _main(
    db: str | None = typer.Option(
        None,
        "--db",
        envvar=store_db.ENV_DB,
        show_envvar=True,
        help="Database URL (sqlite:///FILE, postgresql://USER:PASS@HOST/DB) or an SQLite "
        "file path. Default: an SQLite file in the data directory.",
    ),
) -> None:
    global _state
    _state = State(db)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _handled() -> Iterator[None]:
    """Errors as one `error:` line and their exit code, never a traceback."""
    try:
        yield
    except PbxConnectorError as exc:
        fail(str(exc), exc.exit_code)
    except SQLAlchemyError as exc:
        url = str(_state._engine.url) if _state._engine is not None else None
        error = store_db.store_error(exc, url)
        fail(str(error), error.exit_code)
    except OverflowError:
        fail(f"a number is too large (at most {MAX_INT})", EXIT_USAGE)


def _tx(fn: Callable[[Connection], T]) -> T:
    with _handled(), _state.engine.begin() as conn:
        return fn(conn)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Plain aligned columns: readable on a terminal and stable for scripts and tests."""
    cells = [[("" if v is None else str(v)) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for r in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


# --- database ---------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the newest version (runs by itself on first use too)
    and repair what is missing of it (indexes, tables)."""
    with _handled():
        engine = store_db.make_engine(store_db.resolve_url(_state.db))
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
    with _handled():
        engine = store_db.make_engine(store_db.resolve_url(_state.db))
        store_db.upgrade(engine)
        problems = store_db.check_schema(engine)
    url = store_db.display_url(str(engine.url))
    if not problems:
        typer.echo(f"{url}: schema intact at revision {store_db.head_revision()}")
        return
    for problem in problems:
        typer.echo(f"damaged: {problem}", err=True)
    fail(f"{url}: the schema is damaged; 'pbx-connector db upgrade' repairs it", EXIT_FAILED)


# --- templates and instance settings ----------------------------------------------------


@app.command("templates")
def templates_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the connector templates."""
    if as_json:
        _print_json([t.as_dict() for t in TEMPLATES])
        return
    _table(
        ["TEMPLATE", "TARGET", "SOURCE", "DESCRIPTION"],
        [(t.name, t.target, t.source, t.description) for t in TEMPLATES],
    )


@app.command("config")
def config_cmd(
    assignments: list[str] = typer.Argument(
        None, metavar="[KEY=VALUE]...", help="Settings to change."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show or change instance settings (default_region, outside_line_prefix)."""
    with _handled():
        values = profile_service.parse_assignments(assignments or [])

    def go(conn: Connection) -> dict[str, str]:
        for k, v in values.items():
            set_setting(conn, k, v)
        return get_settings(conn)

    current = _tx(go)
    if as_json:
        _print_json(current)
        return
    _table(
        ["SETTING", "VALUE", "MEANING"], [(k, current[k], SETTING_DEFAULTS[k][1]) for k in current]
    )


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
    with _handled():
        values = profile_service.parse_assignments(settings or [])
        _read_secrets(values, secrets or [], profile_service.secret_setting_names(template))
        profile, notes = profile_service.new_profile(name, template, mode, values)
    created = _tx(lambda conn: insert_profile(conn, profile))
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
    template = _tx(lambda conn: get_profile(conn, name)).template
    with _handled():
        values = profile_service.parse_assignments(assignments or [])
        _read_secrets(values, secrets or [], profile_service.secret_setting_names(template))
        if not values:
            raise UsageError("nothing to change: give KEY=VALUE or --set-secret KEY")

    def go(conn: Connection) -> None:
        p = get_profile(conn, name)
        profile_service.apply_settings(p, values)
        save_profile(conn, p)

    _tx(go)
    typer.echo(f"Updated profile {name!r}.")


@profile_app.command("show")
def profile_show(name: str, as_json: bool = typer.Option(False, "--json")) -> None:
    """Show a profile: settings, key, pre-filter and variables (never secrets)."""
    p = _tx(lambda conn: get_profile(conn, name))
    data = p.public_dict()
    if as_json:
        _print_json(data)
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
    items = _tx(list_profiles)
    if as_json:
        _print_json([p.public_dict() for p in items])
        return
    _table(
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

    deleted = _tx(go)
    extra = f"; {deleted} records deleted" if purge else "; its records were kept"
    typer.echo(f"Deleted profile {name!r}{extra}.")


@profile_app.command("export")
def profile_export(
    name: str,
    output: Path | None = typer.Option(None, "-o", "--output", help="File (default: stdout)."),
) -> None:
    """Export a profile as JSON. Secrets are never exported."""
    p = _tx(lambda conn: get_profile(conn, name))
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
    with _handled():
        profile = profile_service.import_profile(text, name, str(file))
    created = _tx(lambda conn: insert_profile(conn, profile))
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

    variables = _tx(go)
    if as_json:
        _print_json(variables)
        return
    _table(
        ["FIELD", "EXPRESSION"], [(k, v or "(empty: not managed)") for k, v in variables.items()]
    )


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

    value = _tx(go)
    typer.echo(value or "(none: every row passes)")


# --- preview, sync, runs ------------------------------------------------------------------


@app.command("preview")
def preview(
    name: str,
    limit: int = typer.Option(10, "--limit", "-n", min=1, help="How many rows."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show the rows as the source gives them, before pre-filter and variables."""
    p = _tx(lambda conn: get_profile(conn, name))
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    with _handled():
        source = open_source(p.source, p.settings, p.secrets)
        fields = source.fields()
        gen = source.rows()
        try:
            for row in gen:
                if row.error:
                    problems.append(f"line {row.line}: {row.error}")
                    continue
                rows.append(dict(row.data))
                if len(rows) >= limit:
                    break
        finally:
            close = getattr(gen, "close", None)
            if close is not None:
                close()
    if as_json:
        _print_json(rows)
    else:
        typer.echo(f"{source.name}: fields {', '.join(fields)}")
        for i, data in enumerate(rows, 1):
            typer.echo(f"--- row {i}")
            for k, v in data.items():
                typer.echo(f"  {k}: {v}")
    for problem in problems:
        typer.echo(f"warning: {problem}", err=True)


def _progress_for_terminal() -> tuple[RunProgress, Progress | None]:
    if not sys.stderr.isatty():
        return RunProgress(), None
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    )
    reading = bar.add_task("reading rows", total=None)
    writing = bar.add_task("writing", total=None, visible=False)

    def on_read(n: int) -> None:
        bar.update(reading, completed=n)

    def on_write(done: int, total: int) -> None:
        bar.update(writing, completed=done, total=total, visible=True)

    return RunProgress(on_read, on_write), bar


@app.command("sync")
def sync(
    name: str,
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Simulate: print the plan, change nothing."
    ),
    force: bool = typer.Option(False, "--force", help="Run even if a safety rule would abort."),
    check: bool = typer.Option(
        False, "--check", help="Exit 1 when changes are pending (implies --dry-run)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the run report as JSON."),
    show: int = typer.Option(50, "--show", help="How many changes and errors to list."),
) -> None:
    """Run a profile: read the source, plan, and apply (or only plan, with --dry-run)."""
    dry = dry_run or check
    progress, bar = _progress_for_terminal()
    with _handled():
        if bar is not None:
            with bar:
                report = run_profile(
                    _state.engine, name, dry_run=dry, force=force, progress=progress
                )
        else:
            report = run_profile(_state.engine, name, dry_run=dry, force=force)
    target = _tx(lambda conn: get_profile(conn, name)).target
    if as_json:
        _print_json(report)
    else:
        _print_report(report, target, show)
    if report["status"] != "ok":
        raise typer.Exit(EXIT_FAILED)
    c = report["counts"]
    if check and (c["created"] or c["updated"] or c["deleted"]):
        raise typer.Exit(EXIT_PENDING)


def _print_report(report: dict[str, Any], target: str, show: int) -> None:
    # A run that did not write (dry, aborted, failed, interrupted) says what it would do.
    dry = not report["applied"]
    changes = report["changes"]
    for change in changes[:show]:
        for line in words.describe_change(change, target, dry):
            typer.echo(line)
    if len(changes) > show:
        typer.echo(f"… and more changes (see: pbx-connector run show {report['id']})")
    for err in report["errors"][:show]:
        typer.echo(words.describe_error(err), err=True)
    if len(report["errors"]) > show:
        typer.echo(f"… and more errors (see: pbx-connector run show {report['id']})", err=True)
    for w in report["warnings"][:show]:
        where = f"line {w['line']}, " if w.get("line") else ""
        typer.echo(f"warning: {where}field {w['field']!r}: {w['message']}", err=True)
    status = report["status"]
    stream_err = status != "ok"
    typer.echo(f"run {report['id']}: {report['message']}", err=stream_err)
    if report["counts"]:
        typer.echo(words.summary(report), err=stream_err)


@app.command("runs")
def runs_cmd(
    name: str | None = typer.Argument(None, help="Only this profile's runs."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=MAX_INT),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List recent runs, newest first."""
    items = _tx(lambda conn: run_store.list_runs(conn, name, limit))
    if as_json:
        _print_json(items)
        return

    def written(r: dict[str, Any], key: str) -> str:
        # Counts of a run that wrote nothing are what it would have done: in brackets.
        n = r["counts"].get(key, 0)
        return str(n) if r["applied"] or not n else f"({n})"

    _table(
        [
            "ID",
            "PROFILE",
            "STARTED",
            "KIND",
            "STATUS",
            "CREATED",
            "UPDATED",
            "DELETED",
            "INVALID",
            "CONFLICTS",
        ],
        [
            (
                r["id"],
                r["profile"],
                r["started"],
                "dry-run" if r["dry_run"] else "apply",
                r["status"],
                written(r, "created"),
                written(r, "updated"),
                written(r, "deleted"),
                r["counts"].get("invalid", 0),
                r["counts"].get("conflicts", 0),
            )
            for r in items
        ],
    )
    if any(
        not r["applied"] and r["counts"].get(k)
        for r in items
        for k in ("created", "updated", "deleted")
    ):
        typer.echo("(n): would have been changed; the run wrote nothing")


@run_app.command("unlock")
def run_unlock(name: str = typer.Argument(..., help="The profile whose lock to release.")) -> None:
    """Release a profile's run lock left by a process that is gone (its run is marked
    interrupted). A lock also expires by itself when its process stops renewing it."""

    def go(conn: Connection) -> int:
        profile = get_profile(conn, name)
        assert profile.id is not None
        return profile.id

    profile_id = _tx(go)
    with _handled():
        run_id = run_store.unlock(_state.engine, profile_id, name)
    typer.echo(f"Released the lock of profile {name!r} (run {run_id} marked interrupted).")


@run_app.command("show")
def run_show(
    run_id: int = typer.Argument(..., max=MAX_INT, help="The run's id."),
    as_json: bool = typer.Option(False, "--json"),
    show: int = typer.Option(1000, "--show", help="How many changes to list."),
) -> None:
    """Show one run: its plan or changes, errors and counts."""
    report = _tx(lambda conn: run_store.get_run(conn, run_id))
    if as_json:
        _print_json(report)
        return
    typer.echo(
        f"run {report['id']} of profile {report['profile']!r}, {report['trigger']}, "
        f"started {report['started']}, finished {report['finished']}"
    )
    try:
        target = _tx(lambda conn: get_profile(conn, report["profile"])).target
    except typer.Exit:
        target = "phonebook"
    _print_report(report, target, show)


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
        items = _tx(lambda conn: record_store.list_records(conn, target, owner=owner))
        if as_json:
            _print_json(items)
            return
        cols = _LIST_COLUMNS[target]
        _table(
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

        new_id = _tx(go)
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

        record_id = _tx(go)
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

        record_id = _tx(go)
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

    _tx(go)
    typer.echo(f"Set the {what} of user {ref!r}.")


@app.command("template", hidden=True)
def template_show(name: str) -> None:
    """Show one template as JSON."""
    with _handled():
        t = get_template(name)
    _print_json({**t.as_dict(), "settings": [s.name for s in all_settings(t)]})


# Registered last: the auth commands use the helpers above.
from pbx_connector.cli_auth import auth_app  # noqa: E402

app.add_typer(auth_app, name="auth")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        # A run stopped here wrote nothing: its changes commit with its outcome.
        typer.echo(
            "error: interrupted; a run in progress was stopped and changed nothing", err=True
        )
        sys.exit(130)
    except SQLAlchemyError as exc:
        typer.echo(f"error: {store_db.store_error(exc)}", err=True)
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":
    # Run the importable module, not this __main__ copy, so that there is one CLI state.
    from pbx_connector.cli import main as _main_of_module

    _main_of_module()
