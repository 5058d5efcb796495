"""`pbx-connector serve`: the admin pages and the REST API over HTTP."""

from __future__ import annotations

import os
import sys

import typer

from pbx_connector.cli.base import app, handled, state


def _first_sign_in(url: str) -> list[str]:
    """What to tell the administrator of a fresh store. A one-time password is made only
    when a person reads this terminal: written to a log (a service's journal) it would
    be a secret in a log, so there the instruction is the command that sets one."""
    core = state.app
    if not sys.stderr.isatty():
        if core.setup.admin_needs_password():
            return [
                "The built-in admin has no password yet: set one with "
                "'pbx-connector users passwd admin', then sign in at " + url,
            ]
        return []
    password = core.setup.first_admin_password()
    if password is None:
        return []
    return [
        f"First sign-in: open {url} and sign in as 'admin' with the password",
        "",
        f"    {password}",
        "",
        "It is shown only this once. Change it on the Users page or with",
        "'pbx-connector users passwd admin'.",
    ]


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
    workers: int = typer.Option(
        1,
        "--workers",
        min=1,
        max=64,
        help="Processes answering requests (one per core makes the most of a machine).",
    ),
) -> None:
    """Serve the admin pages at http://HOST:PORT/ and the REST API at /api/v1 (OpenAPI
    at /api/v1/openapi.json). On a fresh store, print how to sign in the first time."""
    import uvicorn

    from pbx_connector.api import create_api

    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    url = f"http://{shown}:{port}/"
    with handled():
        core = state.app
        # The supervisor of several workers answers no request itself: the application
        # (routes, templates, schemas) is built in each worker, not here as well.
        api = create_api(core) if workers == 1 else None
        lines = _first_sign_in(url)
    for line in lines:
        typer.echo(line, err=True)
    typer.echo(f"Serving {core.url}: the pages at {url}, the API at {url}api/v1", err=True)
    if api is not None:
        uvicorn.run(api, host=host, port=port, log_level="info", access_log=False)
        return
    # Each worker is a new process that opens the same store; one Python process uses
    # one core at a time for Python code, whatever its threads. The supervisor of the
    # workers answers no request: this process becomes a fresh interpreter that loads
    # uvicorn alone (27 MB instead of the 98 MB of this one, with every command and the
    # core imported), keeping its process id for a service manager.
    os.environ.update(core.worker_environment())
    core.engine.dispose()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(
        sys.executable,
        [
            sys.executable,
            "-m",
            "uvicorn",
            "pbx_connector.api.app:from_environment",
            "--factory",
            "--workers",
            str(workers),
            "--host",
            host,
            "--port",
            str(port),
            "--log-level",
            "info",
            "--no-access-log",
        ],
    )
