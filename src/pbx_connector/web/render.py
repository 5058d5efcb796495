"""Rendering pages: one Jinja2 environment (autoescaped), the context every page shares,
and a run report in the words of `service.words` (the same sentences as the CLI)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from pbx_connector.models.runs import RunReport
from pbx_connector.models.sessions import WebSession
from pbx_connector.service import words
from pbx_connector.web.assets import HTMX_URL, TEMPLATES_DIR
from pbx_connector.web.security import CSRF_FIELD, CSRF_HEADER

#: A run page shows at most this many changes; the rest are counted.
MAX_CHANGES = 500
#: Statuses of a run that is not over yet: its page keeps refreshing.
ACTIVE = ("queued", "running")

_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["path"] = lambda value: quote(str(value), safe="")


def page(
    request: Request,
    template: str,
    session: WebSession | None = None,
    *,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A whole page (or an htmx fragment); never cached, it shows signed-in data."""
    html = _env.get_template(template).render(
        request=request,
        session=session,
        csrf_field=CSRF_FIELD,
        csrf_headers=_csrf_headers(session),
        htmx_url=HTMX_URL,
        **context,
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})


def _csrf_headers(session: WebSession | None) -> str:
    return json.dumps({CSRF_HEADER: session.csrf_token}) if session else ""


def run_view(report: RunReport) -> dict[str, Any]:
    """What a run page shows, in words."""
    data = report.model_dump(mode="json")
    target = report.target
    changes: list[list[str]] = []
    for change in data.get("changes", [])[:MAX_CHANGES]:
        if target is None:
            changes.append([f"{change['action']} {change['record']!r}"])
        else:
            changes.append(words.describe_change(change, target, not report.applied))
    return {
        "run": report,
        "active": report.status in ACTIVE,
        "summary": words.summary(data),
        "errors": [words.describe_error(e) for e in data.get("errors", [])],
        "warnings": [w["message"] for w in data.get("warnings", [])],
        "changes": changes,
        "more_changes": max(0, len(report.changes) - MAX_CHANGES),
    }
