"""The `pbx-connector` command line: one module per group of commands, each a thin face
over the application core (see `base` for what they share)."""

from __future__ import annotations

# Importing a module registers its commands on `app`, in the order `--help` lists them.
from pbx_connector.cli import (  # noqa: F401
    auth,
    db,
    imports,
    lookup,
    profiles,
    records,
    runs,
    serve,
    settings,
    tokens,
    uploads,
)
from pbx_connector.cli.base import app, main

__all__ = ["app", "main"]
