"""Rendering pages: one Jinja2 environment (autoescaped), the context every page shares,
and a run report in the words of `service.words` (the same sentences as the CLI)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from pbx_connector.models.runs import Change, RunReport
from pbx_connector.models.sessions import WebSession
from pbx_connector.service import words
from pbx_connector.web.assets import HTMX_URL, TEMPLATES_DIR
from pbx_connector.web.security import CSRF_FIELD, CSRF_HEADER

#: Statuses of a run that is not over yet: its page keeps refreshing.
ACTIVE = ("queued", "running")

_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["path"] = lambda value: quote(str(value), safe="")

#: Settings named in the seed's words on the forms; any other setting by its name.
SETTING_LABELS = {
    "path": "Path to CSV File",
    "encoding": "CSV File Encoding",
    "delimiter": "Delimiter",
    "line_separator": "Line Separator",
    "enclosure": "Field Enclosure",
    "uri": "URI",
    "base_dn": "Base DN",
    "bind_dn": "Bind DN",
    "ca_file": "CA file",
    "domain": "AD Domain",
    "server": "AD Server",
    "bind_user": "Username",
    "bind_password": "Password",
    "max_delete": "Max delete",
}


def setting_label(name: str) -> str:
    return SETTING_LABELS.get(name) or name.replace("_", " ").capitalize()


_env.filters["setting_label"] = setting_label


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


#: Plan entries (changes, or invalid rows) per page of a run page.
PLAN_PAGE = 50
#: What a run page's plan can be narrowed to, and how each is named.
PLAN_KINDS: dict[str, str] = {
    "all": "All changes",
    "create": "Creates",
    "update": "Updates",
    "delete": "Deletes",
    "invalid": "Invalid rows and conflicts",
}
#: Safety rules in words, as a run page names the one that stopped a run.
SAFETY_RULES = {
    "max_delete": "max_delete (too many deletions)",
    "no rows": "no rows (the source yielded none)",
    "pre-filter": "pre-filter (it rejected every row)",
}


def shown(value: Any) -> str:
    """A field value as a page shows it."""
    if value is None or value == "":
        return "(empty)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(empty)"
    return str(value)


def _change_view(change: Change, target: str | None, dry: bool) -> dict[str, Any]:
    data = change.model_dump(mode="json")
    if target is None:
        headline = f"{change.action} {change.record!r}"
    else:
        headline = words.describe_change(data, target, dry)[0]
    diff = [(d.field, shown(d.before), shown(d.after)) for d in change.diff]
    return {"action": change.action, "headline": headline, "diff": diff}


def last_run_view(report: RunReport) -> dict[str, Any]:
    """What a list shows of a run: its status, start and counts in words."""
    return {"run": report, "summary": words.summary(report.model_dump(mode="json"))}


def run_view(report: RunReport, show: str = "all", page_no: int = 1) -> dict[str, Any]:
    """What a run page shows, in words: its report, and one page of its plan (`show`
    narrows it to one kind of change, or to the invalid rows)."""
    data = report.model_dump(mode="json")
    show = show if show in PLAN_KINDS else "all"
    dry = not report.applied
    if show == "invalid":
        picked: list[Any] = [e for e in report.errors if e.kind is not None]
    else:
        picked = [c for c in report.changes if show == "all" or c.action == show]
    pages = max(1, -(-len(picked) // PLAN_PAGE))
    page_no = min(max(1, page_no), pages)
    window = picked[(page_no - 1) * PLAN_PAGE : page_no * PLAN_PAGE]
    c = report.counts
    counted = {
        "all": c.created + c.updated + c.deleted,
        "create": c.created,
        "update": c.updated,
        "delete": c.deleted,
        "invalid": c.invalid + c.conflicts,
    }
    listed = {
        "all": len(report.changes),
        "create": sum(1 for x in report.changes if x.action == "create"),
        "update": sum(1 for x in report.changes if x.action == "update"),
        "delete": sum(1 for x in report.changes if x.action == "delete"),
        "invalid": sum(1 for e in report.errors if e.kind is not None),
    }
    if show == "invalid":
        entries = [{"headline": words.describe_error(e.model_dump()), "diff": []} for e in window]
    else:
        entries = [_change_view(x, report.target, dry) for x in window]
    return {
        "run": report,
        "active": report.status in ACTIVE,
        "summary": words.summary(data),
        # The error that failed a run (no kind); invalid rows are part of the plan.
        "errors": [words.describe_error(e) for e in data.get("errors", []) if not e.get("kind")],
        "warnings": [words.describe_error(w).replace("error: ", "", 1) for w in data["warnings"]],
        "plan": {
            "show": show,
            "kinds": PLAN_KINDS,
            "counted": counted,
            "listed": listed,
            "entries": entries,
            "page_no": page_no,
            "pages": pages,
            "first": (page_no - 1) * PLAN_PAGE + 1,
            "unlisted": max(0, counted[show] - listed[show]),
        },
        "safety_rule": SAFETY_RULES.get(report.safety_rule or ""),
    }
