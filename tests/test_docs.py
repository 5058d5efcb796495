"""The documentation keeps up with the product: every command and every API route is
documented, and the JSON examples of the API docs validate against the models."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from sqlalchemy import create_engine

from pbx_connector.api import create_api
from pbx_connector.cli import app as cli_app
from pbx_connector.models.runs import RunProgress
from pbx_connector.models.tokens import Principal
from pbx_connector.service import App

DOCS = Path(__file__).parent.parent / "docs"


def _all_docs() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))


def _commands() -> list[str]:
    root = typer.main.get_command(cli_app)
    found: list[str] = []

    def walk(cmd: Any, path: list[str]) -> None:
        if hasattr(cmd, "commands"):  # a group
            for name, sub in cmd.commands.items():
                if not sub.hidden:
                    walk(sub, [*path, name])
        else:
            found.append(" ".join(path))

    walk(root, [])
    return found


@pytest.mark.parametrize("command", _commands())
def test_every_command_is_documented(command: str) -> None:
    # In the command table (`| `profile create NAME …`) or in an example.
    assert re.search(
        rf"`{re.escape(command)}\b|pbx-connector {re.escape(command)}\b", _all_docs()
    ), f"'{command}' is not in docs/"


def _routes() -> list[str]:
    # Routes are known without a store: the app object is only held, not used.
    built = create_api(App(create_engine("sqlite://")))
    paths = built.openapi()["paths"]
    return sorted(f"{method.upper()} {path}" for path, ops in paths.items() for method in ops)


@pytest.mark.parametrize("route", _routes())
def test_every_api_route_is_documented(route: str) -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    method, path = route.split(" ")
    assert path in text, f"{route} is not in docs/api.md"
    assert method in text


def test_json_examples_of_the_api_docs_validate() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", text, re.S)]
    errors = [b for b in blocks if "error" in b]
    assert errors and all(
        {"status", "code", "message", "field", "line", "errors"} <= set(b["error"]) for b in errors
    )
    progress = [b for b in blocks if "phase" in b]
    assert progress
    for b in progress:
        RunProgress.model_validate(b)
    inline = re.findall(r"`(\{\"username\": \"\w+\", \"role\".*?\})`", text)
    assert inline
    for b in inline:
        Principal.model_validate(json.loads(b))
