"""A profile's pages: the template overview (`Add`), the profile with its tabs, and
`Import Now`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from pbx_connector.web.render import page, run_view
from pbx_connector.web.routing import HtmlRoute, Viewer, Writer, core, executor

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)


@router.get("/profiles/{name}")
def profile(request: Request, name: str, session: Viewer) -> Response:
    app = core(request)
    view = app.profiles.get(name)
    runs = app.runs.list(name, limit=10)
    return page(
        request,
        "profile.html",
        session,
        profile=view,
        runs=[run_view(r) for r in runs.items],
        runs_total=runs.total,
    )


@router.post("/profiles/{name}/runs")
def import_now(request: Request, name: str, session: Writer) -> Response:
    """`Import Now`: a run is queued (trigger `web`) and carried out in the background by
    the same executor the API uses; the browser goes to the run's page, which follows it."""
    run = core(request).runs.request(name, dry_run=False, trigger="web")
    executor(request).submit(run.id)
    return RedirectResponse(f"/runs/{run.id}", status_code=303)
