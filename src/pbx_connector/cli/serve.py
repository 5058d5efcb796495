"""`pbx-connector serve`: the REST API (and, later, the admin pages) over HTTP."""

from __future__ import annotations

import typer

from pbx_connector.cli.base import app, handled, state


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", min=1, max=65535, help="Port to listen on."),
) -> None:
    """Serve the REST API at http://HOST:PORT/api/v1 (OpenAPI at /api/v1/openapi.json)."""
    import uvicorn

    from pbx_connector.api import create_api

    with handled():
        core = state.app
        api = create_api(core)
        if not core.tokens.list():
            typer.echo(
                "No API token yet: create one with 'pbx-connector token create NAME --role admin'.",
                err=True,
            )
    typer.echo(f"Serving {core.url} at http://{host}:{port}/api/v1", err=True)
    uvicorn.run(api, host=host, port=port, log_level="info", access_log=False)
