"""`templates` and `config`: the template catalogue and instance settings."""

from __future__ import annotations

import typer
from sqlalchemy import Connection

from pbx_connector import profiles as profile_service
from pbx_connector.cli.base import (
    app,
    handled,
    print_json,
    table,
    tx,
)
from pbx_connector.store.settings import DEFAULTS as SETTING_DEFAULTS
from pbx_connector.store.settings import get_settings, set_setting
from pbx_connector.templates import TEMPLATES, all_settings, get_template

# --- templates and instance settings ----------------------------------------------------


@app.command("templates")
def templates_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the connector templates."""
    if as_json:
        print_json([t.as_dict() for t in TEMPLATES])
        return
    table(
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
    with handled():
        values = profile_service.parse_assignments(assignments or [])

    def go(conn: Connection) -> dict[str, str]:
        for k, v in values.items():
            set_setting(conn, k, v)
        return get_settings(conn)

    current = tx(go)
    if as_json:
        print_json(current)
        return
    table(
        ["SETTING", "VALUE", "MEANING"], [(k, current[k], SETTING_DEFAULTS[k][1]) for k in current]
    )


@app.command("template", hidden=True)
def template_show(name: str) -> None:
    """Show one template as JSON."""
    with handled():
        t = get_template(name)
    print_json({**t.as_dict(), "settings": [s.name for s in all_settings(t)]})
