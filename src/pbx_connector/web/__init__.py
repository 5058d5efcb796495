"""The web admin pages: server-rendered HTML (Jinja2) with htmx, no build step and
nothing loaded from another site. `install` adds them to the application `serve` runs."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from pbx_connector.web import (
    admin_pages,
    import_pages,
    pages,
    pbx_pages,
    profile_pages,
    record_pages,
)
from pbx_connector.web.assets import HTMX_SHA256, HTMX_VERSION, STATIC_DIR
from pbx_connector.web.security import SecurityHeaders

__all__ = ["HTMX_SHA256", "HTMX_VERSION", "install"]


def install(api: FastAPI) -> None:
    """The pages at `/`, their files at `/static`, security headers on every response."""
    for module in (pages, profile_pages, record_pages, admin_pages, import_pages, pbx_pages):
        api.include_router(module.router)
    api.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    api.add_middleware(SecurityHeaders)
