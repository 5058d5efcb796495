"""What every page route shares: the route class that turns errors into pages, the
signed-in session (`Viewer`), the checks of a state-changing request (`Writer`: Origin,
CSRF token, admin role) and reading a submitted form.

A page module makes its own `APIRouter(route_class=HtmlRoute)`; `web.install` adds it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
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
from pbx_connector.web import security
from pbx_connector.web.render import page

#: The largest form body taken without a file (a sign-in or a profile form is far smaller).
MAX_FORM = 256 * 1024
#: The largest file a form may carry (a profile export, a CSV or xlsx upload).
MAX_FILE = 64 * 1024 * 1024
#: The most fields one form may have.
MAX_FIELDS = 500


class SignInFirst(Exception):
    """The request has no (live) session: it is sent to the sign-in form."""


class Refused(Exception):
    """A state-changing request that failed the Origin or CSRF check (403), or a form
    that is too large (413) or cannot be read."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class HtmlRoute(APIRoute):
    """A route whose errors are pages, not the API's JSON: no session → the sign-in
    form; an error of the core → an error page with its status and message."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInFirst:
                return to_sign_in(request)
            except Refused as exc:
                return page(request, "error.html", status_code=exc.status, message=exc.message)
            except PbxConnectorError as exc:
                return error_page(request, exc)

        return handle


def core(request: Request) -> App:
    """The application core `serve` built."""
    app: App = request.app.state.core
    return app


def executor(request: Request) -> RunExecutor:
    """The background executor of runs (the same one the API uses)."""
    runner: RunExecutor = request.app.state.executor
    return runner


def to_sign_in(request: Request) -> Response:
    if request.headers.get("hx-request"):
        # htmx would swap the sign-in page into a fragment: have it load the page instead.
        return Response(status_code=401, headers={"HX-Redirect": "/login"})
    target = request.url.path
    if request.method == "GET" and target not in ("/", "/login"):
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    return RedirectResponse("/login", status_code=303)


def error_page(request: Request, exc: PbxConnectorError) -> Response:
    """The one HTML error page: the core's message and the HTTP status of its error."""
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


@dataclass(frozen=True)
class Form:
    """A submitted form: text fields (the first value of each, and every value for
    fields that repeat) and uploaded files by field name."""

    fields: dict[str, str] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, UploadFile] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    def getlist(self, name: str) -> list[str]:
        return self.lists.get(name, [])


async def read_form(request: Request) -> Form:
    """The form of this request (urlencoded or multipart), read once and kept."""
    cached = getattr(request.state, "form", None)
    if isinstance(cached, Form):
        return cached
    length = request.headers.get("content-length")
    is_multipart = request.headers.get("content-type", "").startswith("multipart/")
    limit = MAX_FILE + MAX_FORM if is_multipart else MAX_FORM
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise _too_large(is_multipart)
    try:
        data = await request.form(max_files=4, max_fields=MAX_FIELDS, max_part_size=MAX_FILE)
    except HTTPException as exc:  # how starlette refuses a malformed or too large body
        if "maximum size" in str(exc.detail):  # a field (not a file) longer than MAX_FILE
            raise _too_large(False) from None
        raise Refused(f"the form could not be read: {exc.detail}", status=400) from None
    fields: dict[str, str] = {}
    lists: dict[str, list[str]] = {}
    files: dict[str, UploadFile] = {}
    for name, value in data.multi_items():
        if isinstance(value, UploadFile):
            files.setdefault(name, value)
            continue
        fields.setdefault(name, value)
        lists.setdefault(name, []).append(value)
    form = Form(fields=fields, lists=lists, files=files)
    request.state.form = form
    return form


def _too_large(is_multipart: bool) -> Refused:
    if is_multipart:
        return Refused(
            f"the file is larger than {MAX_FILE // (1024 * 1024)} MiB, the most an upload "
            "may be: nothing was changed",
            status=413,
        )
    return Refused("the form is too large: nothing was changed", status=413)


def viewer(request: Request) -> WebSession:
    """The signed-in session (any role); without one, the sign-in form."""
    session_id = request.cookies.get(security.SESSION_COOKIE, "")
    if not session_id:
        raise SignInFirst
    try:
        session = core(request).sessions.resume(session_id)
    except Unauthenticated:
        raise SignInFirst from None
    request.state.web_session = session
    return session


async def checked(request: Request) -> WebSession:
    """A state-changing request from our own origin, signed in, carrying the session's
    CSRF token (form field or header). Any role."""
    if not security.same_origin(request):
        raise Refused("this request came from another site and was refused")
    session = viewer(request)
    given = request.headers.get(security.CSRF_HEADER)
    if given is None:
        given = (await read_form(request)).fields.get(security.CSRF_FIELD)
    if not security.token_matches(session.csrf_token, given):
        raise Refused("the form has expired or was not sent by this page: reload and try again")
    return session


async def writer(request: Request) -> WebSession:
    """A state-changing request (see `checked`) by a user holding the admin role."""
    session = await checked(request)
    if not session.can_write:
        raise PermissionDenied("this needs the admin role; you are signed in as a viewer")
    return session


Viewer = Annotated[WebSession, Depends(viewer)]
Writer = Annotated[WebSession, Depends(writer)]
#: Signed in with a valid CSRF token, any role (signing out; asking a read-only question
#: that needs a POST body, like evaluating unsaved expressions).
Checked = Annotated[WebSession, Depends(checked)]
