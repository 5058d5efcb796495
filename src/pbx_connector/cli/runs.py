"""`preview`, `sync`, `runs` and `run …`: running profiles and their history."""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Connection

from pbx_connector.cli.base import (
    EXIT_FAILED,
    EXIT_PENDING,
    MAX_INT,
    app,
    handled,
    print_json,
    state,
    table,
    tx,
)
from pbx_connector.sources.registry import open_source
from pbx_connector.store import runs as run_store
from pbx_connector.store.profiles import (
    get_profile,
)
from pbx_connector.sync import report as words
from pbx_connector.sync.runner import Progress as RunProgress
from pbx_connector.sync.runner import run_profile

run_app = typer.Typer(help="Past runs and run locks.", no_args_is_help=True)
app.add_typer(run_app, name="run")

# --- preview, sync, runs ------------------------------------------------------------------


@app.command("preview")
def preview(
    name: str,
    limit: int = typer.Option(10, "--limit", "-n", min=1, help="How many rows."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show the rows as the source gives them, before pre-filter and variables."""
    p = tx(lambda conn: get_profile(conn, name))
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    with handled():
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
        print_json(rows)
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
    with handled():
        if bar is not None:
            with bar:
                report = run_profile(
                    state.engine, name, dry_run=dry, force=force, progress=progress
                )
        else:
            report = run_profile(state.engine, name, dry_run=dry, force=force)
    target = tx(lambda conn: get_profile(conn, name)).target
    if as_json:
        print_json(report)
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
    items = tx(lambda conn: run_store.list_runs(conn, name, limit))
    if as_json:
        print_json(items)
        return

    def written(r: dict[str, Any], key: str) -> str:
        # Counts of a run that wrote nothing are what it would have done: in brackets.
        n = r["counts"].get(key, 0)
        return str(n) if r["applied"] or not n else f"({n})"

    table(
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

    profile_id = tx(go)
    with handled():
        run_id = run_store.unlock(state.engine, profile_id, name)
    typer.echo(f"Released the lock of profile {name!r} (run {run_id} marked interrupted).")


@run_app.command("show")
def run_show(
    run_id: int = typer.Argument(..., max=MAX_INT, help="The run's id."),
    as_json: bool = typer.Option(False, "--json"),
    show: int = typer.Option(1000, "--show", help="How many changes to list."),
) -> None:
    """Show one run: its plan or changes, errors and counts."""
    report = tx(lambda conn: run_store.get_run(conn, run_id))
    if as_json:
        print_json(report)
        return
    typer.echo(
        f"run {report['id']} of profile {report['profile']!r}, {report['trigger']}, "
        f"started {report['started']}, finished {report['finished']}"
    )
    try:
        target = tx(lambda conn: get_profile(conn, report["profile"])).target
    except typer.Exit:
        target = "phonebook"
    _print_report(report, target, show)
