"""`templates` and `config`: the template catalogue and instance settings."""

from __future__ import annotations

import typer

from pbx_connector.cli.base import app, handled, parse_assignments, print_json, state, table
from pbx_connector.models.catalog import InstanceSettings, TemplateView


def _template_json(t: TemplateView) -> dict[str, object]:
    """A template as `templates --json` has always printed it: the settings of its source,
    without those every profile has."""
    data: dict[str, object] = t.model_dump(mode="json", exclude={"common_settings"})
    return data


@app.command("templates")
def templates_cmd(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the connector templates."""
    with handled():
        templates = state.app.catalog.templates()
    if as_json:
        print_json([_template_json(t) for t in templates])
        return
    table(
        ["TEMPLATE", "TARGET", "SOURCE", "DESCRIPTION"],
        [(t.name, t.target, t.source, t.description) for t in templates],
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
        values = parse_assignments(assignments or [])
        current = state.app.catalog.set_config(values) if values else state.app.catalog.config()
    shown = current.model_dump(mode="json")
    if as_json:
        print_json(shown)
        return
    table(
        ["SETTING", "VALUE", "MEANING"],
        [(k, v, InstanceSettings.meaning(k)) for k, v in shown.items()],
    )


@app.command("template", hidden=True)
def template_show(name: str) -> None:
    """Show one template as JSON."""
    with handled():
        t = state.app.catalog.template(name)
    print_json({**_template_json(t), "settings": [s.name for s in t.all_settings()]})
