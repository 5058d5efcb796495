"""`preview`, `sync`, `runs` and `run …`: running profiles and their history."""

from __future__ import annotations

import sys

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pbx_connector.cli.base import (
    EXIT_FAILED,
    EXIT_PENDING,
    MAX_INT,
    app,
    handled,
    print_json,
    state,
    table,
)
from pbx_connector.models.runs import RunReport
from pbx_connector.service import words
from pbx_connector.service.runs import Progress as RunProgress

run_app = typer.Typer(help="Past runs and run locks.", no_args_is_help=True)
app.add_typer(run_app, name="run")

# --- preview, sync, runs ------------------------------------------------------------------


@app.command("preview")
def preview(
    name: str,
    limit: int = typer.Option(10, "--limit", "-n", min=1, max=10_000, help="How many rows."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show the rows as the source gives them, before pre-filter and variables."""
    with handled():
        result = state.app.profiles.preview(name, limit)
    if as_json:
        print_json(result.rows)
    else:
        typer.echo(f"{result.source}: fields {', '.join(result.fields)}")
        for i, data in enumerate(result.rows, 1):
            typer.echo(f"--- row {i}")
            for k, v in data.items():
                typer.echo(f"  {k}: {v}")
    for problem in result.problems:
        typer.echo(f"warning: line {problem.line}: {problem.message}", err=True)


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
    force: bool = typer.Option(
        False,
        "--force",
        help="Run even if a safety rule would abort; read a URL fully even when unchanged.",
    ),
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
                report = state.app.runs.run(name, dry_run=dry, force=force, progress=progress)
        else:
            report = state.app.runs.run(name, dry_run=dry, force=force)
    if as_json:
        print_json(report.as_json())
    else:
        _print_report(report, show)
    if report.status != "ok":
        raise typer.Exit(EXIT_FAILED)
    if check and report.pending:
        raise typer.Exit(EXIT_PENDING)


def _print_report(run: RunReport, show: int) -> None:
    report = run.as_json()
    target = run.target or "phonebook"
    # A run that did not write (dry, aborted, failed, interrupted) says what it would do.
    dry = not run.applied
    changes = report["changes"]
    for change in changes[:show]:
        for line in words.describe_change(change, target, dry):
            typer.echo(line)
    if len(changes) > show:
        typer.echo(f"… and more changes (see: pbx-connector run show {run.id})")
    for err in report["errors"][:show]:
        typer.echo(words.describe_error(err), err=True)
    if len(report["errors"]) > show:
        typer.echo(f"… and more errors (see: pbx-connector run show {run.id})", err=True)
    for w in report["warnings"][:show]:
        # Where, as the web page says it: the cell or entry the report names, else the line.
        typer.echo("warning: " + words.describe_error(w).removeprefix("error: "), err=True)
    stream_err = run.status != "ok"
    typer.echo(f"run {run.id}: {run.message}", err=stream_err)
    typer.echo(words.summary(report), err=stream_err)
    if run.status == "aborted" and not run.dry_run:
        typer.echo(f"hint: to run it anyway: pbx-connector sync {run.profile} --force", err=True)


@app.command("runs")
def runs_cmd(
    name: str | None = typer.Argument(None, help="Only this profile's runs."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List recent runs, newest first."""
    with handled():
        items = state.app.runs.list(name, limit=limit).items
    if as_json:
        print_json([r.as_json() for r in items])
        return

    def written(r: RunReport, key: str) -> str:
        # Counts of a run that wrote nothing are what it would have done: in brackets.
        n = getattr(r.counts, key)
        return str(n) if r.applied or not n else f"({n})"

    table(
        [
            "ID",
            "PROFILE",
            "STARTED",
            "KIND",
            "TRIGGER",
            "STATUS",
            "CREATED",
            "UPDATED",
            "DELETED",
            "INVALID",
            "CONFLICTS",
        ],
        [
            (
                r.id,
                r.profile,
                r.started,
                "dry-run" if r.dry_run else "apply",
                r.trigger,
                r.status,
                written(r, "created"),
                written(r, "updated"),
                written(r, "deleted"),
                r.counts.invalid,
                r.counts.conflicts,
            )
            for r in items
        ],
    )
    if any(not r.applied and r.pending for r in items):
        typer.echo("(n): would have been changed; the run wrote nothing")


@run_app.command("unlock")
def run_unlock(name: str = typer.Argument(..., help="The profile whose lock to release.")) -> None:
    """Release a profile's run lock left by a process that is gone (its run is marked
    interrupted). A lock also expires by itself when its process stops renewing it."""
    with handled():
        run_id = state.app.runs.unlock(name)
    typer.echo(f"Released the lock of profile {name!r} (run {run_id} marked interrupted).")


@run_app.command("show")
def run_show(
    run_id: int = typer.Argument(..., max=MAX_INT, help="The run's id."),
    as_json: bool = typer.Option(False, "--json"),
    show: int = typer.Option(1000, "--show", help="How many changes to list."),
) -> None:
    """Show one run: its plan or changes, errors and counts."""
    with handled():
        report = state.app.runs.get(run_id)
    if as_json:
        print_json(report.as_json())
        return
    # A scheduled run names its slot: `schedule for 2026-12-01T02:30:00+01:00`.
    trigger = report.trigger
    if report.scheduled_for:
        trigger += f" for {report.scheduled_for}"
    typer.echo(
        f"run {report.id} of profile {report.profile!r}, {trigger}, "
        f"started {report.started}, finished {report.finished}"
    )
    _print_report(report, show)
