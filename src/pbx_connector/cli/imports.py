"""`pbx-connector import …` and `import-template …`: a file imported once, without a
profile; and the file to fill in for it."""

from __future__ import annotations

from pathlib import Path

import typer

from pbx_connector.cli.base import EXIT_FAILED, app, fail, handled, print_json, state
from pbx_connector.models.imports import ImportProblem, ImportResult

_TARGET_HELP = "What the file holds: users, phonebook or speeddials."


def _problem(p: ImportProblem) -> str:
    where = ", ".join(x for x in (p.where, f"field {p.field!r}" if p.field else None) if x)
    kind = "error" if p.kind == "invalid" else p.kind
    return f"{kind}: {where}: {p.message}" if where else f"{kind}: {p.message}"


def _print(result: ImportResult) -> None:
    for problem in result.errors:
        typer.echo(_problem(problem))
    for problem in result.warnings:
        typer.echo(_problem(problem))
    if result.ignored_columns:
        typer.echo(f"note: columns not imported: {', '.join(result.ignored_columns)}")
    c = result.counts
    rows = "1 row" if result.rows == 1 else f"{result.rows} rows"
    conflicts = "1 conflict" if c.conflicts == 1 else f"{c.conflicts} conflicts"
    typer.echo(
        f"{rows} read: {c.created} {'created' if result.applied else 'to create'}, "
        f"{c.invalid} invalid, {conflicts}"
    )
    typer.echo(result.message)


@app.command("import")
def import_file(
    file: Path = typer.Argument(..., help="An .xlsx or .csv file (see import-template)."),
    target: str = typer.Option(..., "--target", "-t", help=_TARGET_HELP),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be imported."),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Import a file once, without a profile: its records count as made by hand.

    Each column named like a field of the target is imported (the first sheet of an
    xlsx file; a CSV file's encoding and delimiter are detected). All rows are imported,
    or none: an invalid or clashing row stops the import (exit 3), naming its cell or
    line."""
    try:
        stream = open(file, "rb")  # noqa: SIM115 - closed below, errors reported first
    except OSError as exc:
        fail(f"{file}: {exc.strerror}")
    with stream, handled():
        result = state.app.imports.run(stream, file.name, target, dry_run=dry_run)
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        _print(result)
    if not result.applied and not dry_run and result.rows:
        raise typer.Exit(EXIT_FAILED)


@app.command("import-template")
def import_template(
    file: Path = typer.Argument(..., help="Where to write it: a .xlsx or .csv file."),
    target: str = typer.Option(..., "--target", "-t", help=_TARGET_HELP),
) -> None:
    """Write the file to fill in for an import: the target's columns and an example row."""
    fmt = "csv" if file.suffix.lower() == ".csv" else "xlsx"
    with handled():
        template = state.app.imports.template(target, fmt)
    try:
        file.write_bytes(template.content)
    except OSError as exc:
        fail(f"{file}: cannot write the template: {exc.strerror}")
    typer.echo(f"Wrote the {template.target} import template to {file}.")
