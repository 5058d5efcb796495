"""The admin pages: sign in and out, the Connector page (profiles, `Import Now`), a
profile, and the runs. Each route reads with GET and changes state only on POST, after
`writer` has checked the request's Origin, its CSRF token and the admin role."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response

from pbx_connector.errors import (
    PbxConnectorError,
    PermissionDenied,
    RunLocked,
    Unauthenticated,
)
from pbx_connector.models.sessions import WebSession
from pbx_connector.service import App
from pbx_connector.service.executor import RunExecutor
from pbx_connector.service.sessions import ABSOLUTE
from pbx_connector.web import security
from pbx_connector.web.render import page, run_view

#: The largest form body taken (a sign-in or a button press is far smaller).
MAX_FORM = 64 * 1024
#: Runs per page of the history.
RUNS_PAGE = 50


class SignInFirst(Exception):
    """The request has no (live) session: it is sent to the sign-in form."""


class Refused(Exception):
    """A state-changing request that failed the Origin or CSRF check."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class HtmlRoute(APIRoute):
    """A route whose errors are pages, not the API's JSON: no session → the sign-in
    form; an error of the core → an error page with its status and message."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInFirst:
                return _to_sign_in(request)
            except Refused as exc:
                return page(request, "error.html", status_code=403, message=exc.message)
            except PbxConnectorError as exc:
                return _error_page(request, exc)

        return handle


router = APIRouter(route_class=HtmlRoute, include_in_schema=False)


def _core(request: Request) -> App:
    app: App = request.app.state.core
    return app


def _to_sign_in(request: Request) -> Response:
    if request.headers.get("hx-request"):
        # htmx would swap the sign-in page into a fragment: have it load the page instead.
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    target = request.url.path
    if request.method == "GET" and target not in ("/", "/login"):
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    return RedirectResponse("/login", status_code=303)


def _error_page(request: Request, exc: PbxConnectorError) -> Response:
    session = getattr(request.state, "web_session", None)
    running = exc.running_run_id if isinstance(exc, RunLocked) else None
    return page(
        request,
        "error.html",
        session,
        status_code=exc.http_status,
        message=exc.message,
        running_run_id=running,
    )


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded body of a form (first value of each field)."""
    body = await request.body()
    if len(body) > MAX_FORM:
        raise Refused("the form is too large")
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def viewer(request: Request) -> WebSession:
    """The signed-in session (any role); without one, the sign-in form."""
    session_id = request.cookies.get(security.SESSION_COOKIE, "")
    if not session_id:
        raise SignInFirst
    try:
        session = _core(request).sessions.resume(session_id)
    except Unauthenticated:
        raise SignInFirst from None
    request.state.web_session = session
    return session


async def writer(request: Request) -> WebSession:
    """A state-changing request: from our own origin, signed in, carrying the session's
    CSRF token (form field or header), by a user holding the admin role."""
    if not security.same_origin(request):
        raise Refused("this request came from another site and was refused")
    session = viewer(request)
    form = await _form(request)
    given = request.headers.get(security.CSRF_HEADER) or form.get(security.CSRF_FIELD)
    if not security.token_matches(session.csrf_token, given):
        raise Refused("the form has expired or was not sent by this page: reload and try again")
    if not session.can_write:
        raise PermissionDenied("this needs the admin role; you are signed in as a viewer")
    return session


Viewer = Annotated[WebSession, Depends(viewer)]
Writer = Annotated[WebSession, Depends(writer)]


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
            _core(request).sessions.resume(session_id)
            return RedirectResponse(_safe_next(next), status_code=303)
        except Unauthenticated:
            pass
    return _login_form(request, next_=_safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    if not security.same_origin(request):
        raise Refused("this request came from another site and was refused")
    form = await _form(request)
    if not security.token_matches(
        request.cookies.get(security.LOGIN_COOKIE, ""), form.get(security.CSRF_FIELD)
    ):
        raise Refused("the sign-in form has expired: reload the page and sign in again")
    username = form.get("username", "")
    next_ = _safe_next(form.get("next"))
    try:
        new = _core(request).sessions.login(
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
async def logout(request: Request) -> Response:
    if not security.same_origin(request):
        raise Refused("this request came from another site and was refused")
    session = viewer(request)
    form = await _form(request)
    given = request.headers.get(security.CSRF_HEADER) or form.get(security.CSRF_FIELD)
    if not security.token_matches(session.csrf_token, given):
        raise Refused("the form has expired or was not sent by this page: reload and try again")
    _core(request).sessions.logout(request.cookies.get(security.SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    security.clear_session_cookie(response, request)
    return response


@router.get("/")
def connector(request: Request, session: Viewer) -> Response:
    core = _core(request)
    rows: list[dict[str, Any]] = []
    for profile in core.profiles.list():
        last = core.runs.list(profile.name, limit=1).items
        rows.append({"profile": profile, "last": run_view(last[0]) if last else None})
    return page(request, "connector.html", session, rows=rows)


@router.get("/profiles/{name}")
def profile(request: Request, name: str, session: Viewer) -> Response:
    core = _core(request)
    view = core.profiles.get(name)
    runs = core.runs.list(name, limit=10)
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
    run = _core(request).runs.request(name, dry_run=False, trigger="web")
    executor: RunExecutor = request.app.state.executor
    executor.submit(run.id)
    return RedirectResponse(f"/runs/{run.id}", status_code=303)


@router.get("/runs")
def runs(
    request: Request, session: Viewer, profile: str | None = None, page_no: int = 1
) -> Response:
    core = _core(request)
    page_no = max(1, page_no)
    listed = core.runs.list(profile or None, limit=RUNS_PAGE, offset=(page_no - 1) * RUNS_PAGE)
    return page(
        request,
        "runs.html",
        session,
        runs=[run_view(r) for r in listed.items],
        total=listed.total,
        page_no=page_no,
        pages=max(1, -(-listed.total // RUNS_PAGE)),
        profile=profile or "",
        profiles=[p.name for p in core.profiles.list()],
    )


@router.get("/runs/{run_id}")
def run(request: Request, run_id: int, session: Viewer) -> Response:
    return page(request, "run.html", session, **run_view(_core(request).runs.get(run_id)))


@router.get("/runs/{run_id}/report")
def run_report(request: Request, run_id: int, session: Viewer) -> Response:
    """The report part of a run page alone: what htmx fetches while the run goes on."""
    return page(request, "_report.html", session, **run_view(_core(request).runs.get(run_id)))
