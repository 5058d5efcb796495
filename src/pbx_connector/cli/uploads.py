"""`pbx-connector profile upload …`: the file a profile reads when `upload=yes`."""

from __future__ import annotations

from pathlib import Path

import typer

from pbx_connector.cli.base import fail, handled, print_json, state
from pbx_connector.cli.profiles import profile_app
from pbx_connector.models.uploads import UploadInfo


def _print(info: UploadInfo) -> None:
    typer.echo(f"file:      {info.name}")
    typer.echo(f"size:      {info.size:,} bytes")
    typer.echo(f"sha256:    {info.sha256}")
    typer.echo(f"uploaded:  {info.uploaded_at.isoformat(timespec='seconds')}")
    typer.echo(f"format:    {info.format}")


@profile_app.command("upload")
def profile_upload(
    name: str = typer.Argument(..., help="Profile name."),
    file: Path | None = typer.Argument(
        None,
        help="The CSV or xlsx file to upload ('-' for standard input). Without it, show "
        "what was uploaded last.",
    ),
    filename: str | None = typer.Option(
        None, "--name", help="The file name to keep (default: FILE's name; 'upload' for stdin)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Upload the file a profile reads (it then reads it: upload=yes), or show the last one.

    The file is kept in the data directory; its name, size, SHA-256 checksum and upload
    time are shown. A .xlsx file is read as xlsx, a .csv or .txt file as CSV."""
    if file is None:
        with handled():
            shown = state.app.uploads.info(name)
        if as_json:
            print_json(None if shown is None else shown.model_dump(mode="json"))
        elif shown is None:
            typer.echo(f"Nothing has been uploaded to profile {name!r} yet.")
        else:
            _print(shown)
        return
    if str(file) == "-":
        import sys

        with handled():
            info = state.app.uploads.upload(name, sys.stdin.buffer, filename or "upload")
    else:
        try:
            stream = open(file, "rb")  # noqa: SIM115 - closed below, errors reported first
        except OSError as exc:
            fail(f"{file}: {exc.strerror}")
        with stream, handled():
            info = state.app.uploads.upload(name, stream, filename or file.name)
    if as_json:
        print_json(info.model_dump(mode="json"))
        return
    typer.echo(f"Uploaded {info.name!r} to profile {name!r}; it reads it from now on.")
    _print(info)
    for note in info.notes:
        typer.echo(f"note: {note}")
