"""The admin pages: sign in and out, the Connector page (the list of profiles, with each
one's last and next run), the runs and Force for a run a safety rule stopped. Each route
reads with GET and changes state only on POST, after `routing` has checked the request's
Origin and its CSRF token."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from pbx_connector.errors import PermissionDenied, Unauthenticated, UsageError
from pbx_connector.models.profiles import ScheduleView
from pbx_connector.models.runs import RUN_STATUSES, RunReport
from pbx_connector.models.sessions import WebSession
from pbx_connector.service.sessions import ABSOLUTE
from pbx_connector.web import security
from pbx_connector.web.render import last_run_view, page, run_view, shown
from pbx_connector.web.routing import (
    Checked,
    HtmlRoute,
    Refused,
    Viewer,
    Writer,
    core,
    executor,
    read_form,
)

#: Runs per page of the history.
RUNS_PAGE = 50

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: a path of this site only."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _login_form(
    request: Request,
    *,
    status_code: int = 200,
    username: str = "",
    next_: str = "/",
    errors: dict[str, str] | None = None,
) -> Response:
    token = secrets.token_urlsafe(32)
    response = page(
        request,
        "login.html",
        status_code=status_code,
        login_token=token,
        username=username,
        next=next_,
        errors=errors or {},
    )
    security.set_login_cookie(response, request, token)
    return response


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    session_id = request.cookies.get(security.SESSION_COOKIE, "")
    if session_id:
        try:
            core(request).sessions.resume(session_id)
            return RedirectResponse(_safe_next(next), status_code=303)
        except Unauthenticated:
            pass
    return _login_form(request, next_=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    if not security.same_origin(request):
        raise Refused("this request came from another site and was refused")
    form = await read_form(request)
    if not security.token_matches(
        request.cookies.get(security.LOGIN_COOKIE, ""), form.get(security.CSRF_FIELD)
    ):
        raise Refused("the sign-in form has expired: reload the page and sign in again")
    username = form.get("username", "")
    next_ = _safe_next(form.get("next"))
    try:
        new = core(request).sessions.login(
            username,
            form.get("password", ""),
            replaces=request.cookies.get(security.SESSION_COOKIE) or None,
        )
    except (Unauthenticated, PermissionDenied) as exc:
        field = exc.field if exc.field in ("username", "password") else "password"
        return _login_form(
            request,
            status_code=exc.http_status,
            username=username,
            next_=next_,
            errors={field: exc.message},
        )
    response = RedirectResponse(next_, status_code=303)
    security.set_session_cookie(response, request, new.session_id, int(ABSOLUTE.total_seconds()))
    response.delete_cookie(security.LOGIN_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, session: Checked) -> Response:
    core(request).sessions.logout(request.cookies.get(security.SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    security.clear_session_cookie(response, request)
    return response


def slot_time(iso: str) -> str:
    """A slot of a schedule as the pages show it, in the schedule's own zone:
    `Tue 2026-12-01 02:30 +01:00` (seconds only when a cron expression names them)."""
    moment = datetime.fromisoformat(iso)
    clock = "%H:%M:%S" if moment.second else "%H:%M"
    offset = moment.strftime("%z")
    if len(offset) == 5:
        offset = f"{offset[:3]}:{offset[3:]}"
    return f"{moment.strftime('%a %Y-%m-%d ' + clock)} {offset}".strip()


def next_run_view(schedule: ScheduleView | None) -> dict[str, Any] | None:
    """What a page shows of a profile's schedule beside its name: the next run, and
    whether its scheduled runs keep failing or it cannot run at all. None: no schedule."""
    if schedule is None:
        return None
    upcoming = schedule.next_run
    return {
        "iso": upcoming,
        "text": slot_time(upcoming) if upcoming else None,
        "failing": schedule.failing,
        "failures": schedule.failures,
        "problem": schedule.problem,
    }


def connector_page(
    request: Request,
    session: WebSession,
    *,
    status_code: int = 200,
    notice: str = "",
    errors: dict[str, str] | None = None,
    import_text: str = "",
    import_name: str = "",
) -> Response:
    """The Connector page: every profile with its last and next run, Add, Import profile."""
    app = core(request)
    latest = app.runs.latest()
    rows: list[dict[str, Any]] = []
    for profile in app.profiles.list():
        last = latest.get(profile.name)
        rows.append(
            {
                "profile": profile,
                "last": last_run_view(last) if last else None,
                "next": next_run_view(profile.schedule),
            }
        )
    return page(
        request,
        "connector.html",
        session,
        status_code=status_code,
        rows=rows,
        notice=notice,
        errors=errors or {},
        import_text=import_text,
        import_name=import_name,
    )


@router.get("/")
def connector(request: Request, session: Viewer, deleted: int = 0, purged: int = 0) -> Response:
    notice = ""
    if deleted:
        notice = (
            f"The profile was deleted, and the {purged} record{'' if purged == 1 else 's'} "
            "it had imported with it."
            if purged
            else "The profile was deleted. The records it imported stay, as if made by hand."
        )
    return connector_page(request, session, notice=notice)


@router.get("/runs")
def runs(
    request: Request,
    session: Viewer,
    profile: str | None = None,
    status: str | None = None,
    page_no: int = 1,
) -> Response:
    app = core(request)
    page_no = max(1, page_no)
    status = status if status in RUN_STATUSES else None
    listed = app.runs.list(
        profile or None, status=status, limit=RUNS_PAGE, offset=(page_no - 1) * RUNS_PAGE
    )
    return page(
        request,
        "runs.html",
        session,
        runs=[last_run_view(r) for r in listed.items],
        total=listed.total,
        page_no=page_no,
        pages=max(1, -(-listed.total // RUNS_PAGE)),
        profile=profile or "",
        status=status or "",
        statuses=RUN_STATUSES,
        profiles=[p.name for p in app.profiles.list()],
    )


@router.get("/runs/{run_id}")
def run(
    request: Request, run_id: int, session: Viewer, show: str = "all", page_no: int = 1
) -> Response:
    report = core(request).runs.get(run_id)
    return page(request, "run.html", session, **run_view(report, show, page_no))


@router.get("/runs/{run_id}/report")
def run_report(
    request: Request, run_id: int, session: Viewer, show: str = "all", page_no: int = 1
) -> Response:
    """The report part of a run page alone: what htmx fetches while the run goes on."""
    report = core(request).runs.get(run_id)
    return page(request, "_report.html", session, **run_view(report, show, page_no))


def _aborted(request: Request, run_id: int) -> RunReport:
    report = core(request).runs.get(run_id)
    if report.status != "aborted" or report.target is None:
        raise UsageError(f"run {run_id} was not stopped by a safety rule: nothing to force")
    return report


@router.get("/runs/{run_id}/force")
def force_form(request: Request, run_id: int, session: Viewer) -> Response:
    """Force: what the aborted run would have deleted, and the button that runs the
    profile past the safety rule."""
    report = _aborted(request, run_id)
    deletes = [c for c in report.changes if c.action == "delete"]
    return page(
        request,
        "run_force.html",
        session,
        **run_view(report, "delete"),
        deletes=[shown(c.record) for c in deletes],
        unlisted_deletes=max(0, report.counts.deleted - len(deletes)),
    )


@router.post("/runs/{run_id}/force")
def force(request: Request, run_id: int, session: Writer) -> Response:
    """A forced import of the aborted run's profile, in the background."""
    report = _aborted(request, run_id)
    forced = core(request).runs.request(report.profile, force=True, trigger="web")
    executor(request).submit(forced.id)
    return RedirectResponse(f"/runs/{forced.id}", status_code=303)
