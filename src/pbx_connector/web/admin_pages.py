"""The instance's pages: Authentication (settings, Test Authentication, the log) and
Settings (instance settings, API tokens).

Every rule is the core's: the pages read with `core(request).auth / .tokens / .catalog`
and hand it what the form holds. An error of the core that names a field is shown next
to that field with the input kept (never a secret), and nothing is saved. Secrets are
write-only: the service account's password is shown as "set", an empty input keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from pbx_connector.errors import PermissionDenied, UsageError
from pbx_connector.models.auth import (
    AUTH_MODES,
    AUTH_ORIGINS,
    AUTH_OUTCOMES,
    AuthAttempt,
    AuthSettingsView,
    AuthTestResult,
)
from pbx_connector.models.catalog import InstanceSettings
from pbx_connector.models.sessions import WebSession
from pbx_connector.models.tokens import TokenView
from pbx_connector.service.access import may_read
from pbx_connector.service.auth import SECRET_SETTINGS, SETTING_CHOICES, SETTING_HELP
from pbx_connector.service.tokens import MAX_DAYS, ROLES
from pbx_connector.web.render import page
from pbx_connector.web.routing import HtmlRoute, Viewer, Writer, core, read_form

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

#: Rows of the authentication log per page.
LOG_PAGE = 50
#: The service account's password: write-only, and "clear" is its own checkbox.
SECRET = "bind_password"
CLEAR_SECRET = "bind_password_clear"
#: The test's own fields (not `username`/`password`, which browsers fill in with the
#: signed-in user's saved sign-in).
TEST_USERNAME = "test_username"
TEST_PASSWORD = "test_password"


@dataclass(frozen=True)
class FieldSpec:
    """How a form shows one setting: its label, and the input it needs."""

    name: str
    label: str
    kind: str = "text"  # text, number, select, password
    placeholder: str = ""


@dataclass(frozen=True)
class FieldGroup:
    legend: str
    intro: str
    fields: tuple[FieldSpec, ...]


#: The authentication settings as the form groups them (the seed's `LDAP Server`, `LDAP
#: Bind User` and the service account for search-then-bind), every one of `SETTING_HELP`.
AUTH_GROUPS: tuple[FieldGroup, ...] = (
    FieldGroup(
        "Directory server",
        "The LDAP or Active Directory server that checks the passwords of users whose "
        "authentication method is ldap.",
        (
            FieldSpec("uri", "LDAP server URI(s)", placeholder="ldaps://ldap1.example.test"),
            FieldSpec("security", "Connection security", "select"),
            FieldSpec("ca_file", "CA file", placeholder="/etc/ssl/certs/example-ca.pem"),
            FieldSpec("verify", "Verify the server certificate", "select"),
            FieldSpec("timeout", "Timeout (seconds)", "number"),
        ),
    ),
    FieldGroup(
        "LDAP bind user (bind template)",
        "The simple way: bind as the user directly. Put % where the username goes; "
        "pbx-connector replaces it with the username that is logging in.",
        (
            FieldSpec(
                "bind_user", "LDAP bind user", placeholder="uid=%,cn=users,dc=example,dc=test"
            ),
        ),
    ),
    FieldGroup(
        "Search, then bind",
        "Used when the bind user is empty: a service account searches for the user below "
        "the search base, then pbx-connector binds as the entry it found.",
        (
            FieldSpec("bind_dn", "Service account (bind DN)"),
            FieldSpec(SECRET, "Service account password", "password"),
            FieldSpec("search_base", "Search base", placeholder="cn=users,dc=example,dc=test"),
            FieldSpec("user_attribute", "Username attribute"),
            FieldSpec("user_filter", "User filter", placeholder="(memberOf=cn=pbx,…)"),
        ),
    ),
    FieldGroup(
        "Lockout and answer delay",
        "These apply to every login and every test: a failed test counts toward the "
        "lockout of the username tested.",
        (
            FieldSpec("lockout_failures", "Failed attempts before a lock", "number"),
            FieldSpec("lockout_seconds", "First lock (seconds)", "number"),
            FieldSpec("failure_delay_ms", "Answer delay for a rejection (ms)", "number"),
        ),
    ),
)
AUTH_FIELDS: tuple[str, ...] = tuple(f.name for g in AUTH_GROUPS for f in g.fields)

#: The instance settings the Settings page shows, with their labels.
INSTANCE_LABELS: dict[str, str] = {
    "default_region": "Default region",
    "outside_line_prefix": "Outside line prefix",
    "timezone": "Time zone of schedules",
    "lookup_match": "Caller-name lookup",
    "lookup_suffix_digits": "Last digits compared",
    "lookup_clients": "Clients that look up without a token",
}
#: The status of a form sent back with an error next to a field: the input is refused,
#: whatever the core calls it (an unknown owner is a `NotFoundError`, 404 in the API).
INVALID = 422
#: The fields of the form that creates an API token (named as the core names them).
TOKEN_FIELDS = ("name", "role", "owner", "expires")


def _when(value: datetime | str | None) -> str:
    """A time as the pages show it: `2026-11-29 22:19:36 UTC`."""
    if value is None:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(text: str) -> int | None:
    """A page number or id from a link's query string; None for anything else (a link
    someone edited is not worth an error page)."""
    return int(text) if text.isdigit() and len(text) <= 18 else None


def _field_errors(exc: UsageError, known: tuple[str, ...]) -> tuple[dict[str, str], str]:
    """An error of the core as the form shows it: next to the field it names when the
    form has that field, else above the form."""
    if exc.field in known:
        return {exc.field: exc.message}, ""
    return {}, str(exc)


# --- Authentication ---------------------------------------------------------------------------


def _settings_from_form(form: Mapping[str, str], saved: AuthSettingsView) -> dict[str, str]:
    """What the form changes of the saved settings: the fields whose text differs, and
    the service account's password when one is typed or "clear" is ticked (an empty
    input keeps it). The core validates every value."""
    changed: dict[str, str] = {}
    for name in AUTH_FIELDS:
        if name in SECRET_SETTINGS or name not in form:
            continue
        if form[name] != getattr(saved, name):
            changed[name] = form[name]
    typed = form.get(SECRET, "")
    if typed and form.get(CLEAR_SECRET):
        raise UsageError("type a new password or clear the saved one, not both", field=SECRET)
    if typed:
        changed[SECRET] = typed
    elif form.get(CLEAR_SECRET):
        changed[SECRET] = ""
    return changed


def _auth_values(saved: AuthSettingsView, form: Mapping[str, str] | None) -> dict[str, str]:
    """The text each input shows: as submitted when a form comes back with an error,
    else as saved. Never the password."""
    values = {n: str(getattr(saved, n)) for n in AUTH_FIELDS if n not in SECRET_SETTINGS}
    if form is not None:
        values |= {n: form[n] for n in values if n in form}
    return values


def _log_view(
    request: Request, username: str, outcome: str, origin: str, page_no: int
) -> dict[str, Any]:
    """One page of the authentication log with the filters the core takes; a filter it
    refuses is shown next to its field."""
    page_no = max(1, page_no)
    errors: dict[str, str] = {}
    attempts: list[AuthAttempt] = []
    total = 0
    name, result, where = username.strip() or None, outcome or None, origin.strip() or None
    try:
        listed = core(request).auth.log(
            name, LOG_PAGE, (page_no - 1) * LOG_PAGE, outcome=result, origin=where
        )
        last = max(1, -(-listed.total // LOG_PAGE))
        if page_no > last:  # past the end (an old link, the log filtered since): the last page
            page_no = last
            listed = core(request).auth.log(
                name, LOG_PAGE, (page_no - 1) * LOG_PAGE, outcome=result, origin=where
            )
        attempts, total = listed.items, listed.total
    except UsageError as exc:
        errors, _ = _field_errors(exc, ("username", "outcome", "origin"))
        errors = errors or {"username": exc.message}
    filters = {"username": username, "outcome": outcome, "origin": origin}
    return {
        "log_rows": [{"attempt": a, "at": _when(a.at)} for a in attempts],
        "log_total": total,
        "log_page": page_no,
        "log_pages": max(1, -(-total // LOG_PAGE)),
        "log_filters": filters,
        "log_query": urlencode({k: v for k, v in filters.items() if v}),
        "log_errors": errors,
        "outcomes": AUTH_OUTCOMES,
        "origins": sorted({*AUTH_ORIGINS, *([origin] if origin else [])}),
    }


def _auth_context(
    request: Request,
    can_write: bool,
    *,
    form: Mapping[str, str] | None = None,
    errors: dict[str, str] | None = None,
    form_error: str = "",
    test: dict[str, Any] | None = None,
) -> dict[str, Any]:
    saved = core(request).auth.settings()
    return {
        # Viewers see the log, not the directory settings (as in the API).
        "settings_shown": may_read(can_write, "auth_settings"),
        "groups": AUTH_GROUPS,
        "help": SETTING_HELP,
        "choices": SETTING_CHOICES,
        "saved": saved,
        "mode_meaning": AUTH_MODES[saved.mode],
        "values": _auth_values(saved, form),
        "errors": errors or {},
        "form_error": form_error,
        "test": test or _test_context(),
        "secret": SECRET,
        "clear_secret": CLEAR_SECRET,
    }


def _test_context(
    username: str = "",
    result: AuthTestResult | None = None,
    errors: dict[str, str] | None = None,
    form_error: str = "",
) -> dict[str, Any]:
    return {
        "username": username,
        "result": result,
        "errors": errors or {},
        "form_error": form_error,
        "username_field": TEST_USERNAME,
        "password_field": TEST_PASSWORD,
    }


def _authentication_page(
    request: Request,
    session: WebSession,
    *,
    status_code: int = 200,
    log: dict[str, Any] | None = None,
    notice: str = "",
    **context: Any,
) -> Response:
    return page(
        request,
        "authentication.html",
        session,
        status_code=status_code,
        notice=notice,
        **_auth_context(request, session.can_write, **context),
        **(log or _log_view(request, "", "", "", 1)),
    )


@router.get("/authentication")
def authentication(
    request: Request,
    session: Viewer,
    username: str = "",
    outcome: str = "",
    origin: str = "",
    page_no: str = "1",
    saved: str = "",
) -> Response:
    """The seed's `Appliance > Services > Authentication`: the directory settings, Test
    Authentication (admins) and the authentication log."""
    return _authentication_page(
        request,
        session,
        log=_log_view(request, username, outcome, origin, _number(page_no) or 1),
        notice="The authentication settings are saved." if saved else "",
    )


@router.post("/authentication/settings")
async def save_authentication(request: Request, session: Writer) -> Response:
    form = (await read_form(request)).fields
    app = core(request)
    try:
        app.auth.update_settings(_settings_from_form(form, app.auth.settings()))
    except UsageError as exc:
        errors, form_error = _field_errors(exc, AUTH_FIELDS)
        return _authentication_page(
            request,
            session,
            status_code=INVALID,
            form=form,
            errors=errors,
            form_error=form_error,
        )
    return RedirectResponse("/authentication?saved=1", status_code=303)


@router.post("/authentication/test")
async def test_authentication(request: Request, session: Writer) -> Response:
    """Test Authentication: the steps of `pbx-connector auth test`, with the settings as
    the form holds them (unsaved), when htmx sends them along. An attempt like any other:
    it is in the log (origin `test`) and a failure counts toward the lockout."""
    form = (await read_form(request)).fields
    app = core(request)
    username = form.get(TEST_USERNAME, "").strip()
    errors: dict[str, str] = {}
    test_errors: dict[str, str] = {}
    form_error = ""
    result: AuthTestResult | None = None
    if not username:
        test_errors[TEST_USERNAME] = "enter the username to test"
    else:
        try:
            changed = _settings_from_form(form, app.auth.settings())
            result = app.auth.test(username, form.get(TEST_PASSWORD, ""), settings=changed or None)
        except UsageError as exc:
            errors, form_error = _field_errors(exc, AUTH_FIELDS)
    test = _test_context(
        username,
        result,
        test_errors,
        "The settings as typed above are not valid: see the field marked."
        if errors
        else form_error,
    )
    status = INVALID if errors or test_errors or form_error else 200
    if request.headers.get("hx-request"):
        # htmx swaps the test section, and each settings field's error slot out of band
        # (cleared when it has no error), so that the settings typed stay as typed.
        return page(
            request,
            "_auth_test_response.html",
            session,
            test=test,
            errors=errors,
            fields=AUTH_FIELDS,
        )
    return _authentication_page(
        request, session, status_code=status, form=form, errors=errors, test=test
    )


# --- Settings ---------------------------------------------------------------------------------


def _token_row(token: TokenView) -> dict[str, Any]:
    return {
        "token": token,
        "created": _when(token.created),
        "expires": _when(token.expires),
        "last_used": _when(token.last_used),
        "revoked": _when(token.revoked),
    }


def _settings_page(
    request: Request,
    session: WebSession,
    *,
    status_code: int = 200,
    instance_form: Mapping[str, str] | None = None,
    instance_errors: dict[str, str] | None = None,
    instance_error: str = "",
    token_form: Mapping[str, str] | None = None,
    token_errors: dict[str, str] | None = None,
    token_error: str = "",
    notice: str = "",
) -> Response:
    app = core(request)
    config = app.catalog.config()
    values = {name: getattr(config, name) for name in INSTANCE_LABELS}
    if instance_form is not None:
        values |= {n: instance_form[n] for n in values if n in instance_form}
    token_values = {"name": "", "role": "viewer", "owner": session.username, "expires": ""}
    if token_form is not None:
        token_values |= {n: token_form[n] for n in TOKEN_FIELDS if n in token_form}
    return page(
        request,
        "settings.html",
        session,
        status_code=status_code,
        instance={
            name: {"label": label, "help": InstanceSettings.meaning(name)}
            for name, label in INSTANCE_LABELS.items()
        },
        values=values,
        errors=instance_errors or {},
        form_error=instance_error,
        # Viewers see the instance settings, not every user's tokens (as in the API).
        tokens=[_token_row(t) for t in app.tokens.list()]
        if may_read(session.can_write, "tokens")
        else None,
        roles=ROLES,
        max_days=MAX_DAYS,
        token_values=token_values,
        token_errors=token_errors or {},
        token_error=token_error,
        notice=notice,
    )


@router.get("/settings")
def settings(request: Request, session: Viewer, saved: str = "", revoked: str = "") -> Response:
    notice = "The instance settings are saved." if saved else ""
    if _number(revoked):
        notice = f"API token {_number(revoked)} is revoked: it no longer works."
    return _settings_page(request, session, notice=notice)


@router.post("/settings")
async def save_settings(request: Request, session: Writer) -> Response:
    form = (await read_form(request)).fields
    values = {name: form[name] for name in INSTANCE_LABELS if name in form}
    try:
        core(request).catalog.set_config(values)
    except UsageError as exc:
        errors, form_error = _field_errors(exc, tuple(INSTANCE_LABELS))
        return _settings_page(
            request,
            session,
            status_code=INVALID,
            instance_form=form,
            instance_errors=errors,
            instance_error=form_error,
        )
    return RedirectResponse("/settings?saved=1", status_code=303)


def _expires_days(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 6:
        raise UsageError(
            f"expires must be a whole number of days from 1 to {MAX_DAYS}, or empty",
            field="expires",
        )
    return int(text)


@router.post("/settings/tokens")
async def create_token(request: Request, session: Writer) -> Response:
    """A new API token, shown on the page this answers with and never again."""
    form = (await read_form(request)).fields
    try:
        new = core(request).tokens.create(
            form.get("name", ""),
            role=form.get("role", ""),
            owner=form.get("owner", "").strip() or session.username,
            expires_days=_expires_days(form.get("expires", "")),
        )
    except UsageError as exc:
        errors, form_error = _field_errors(exc, TOKEN_FIELDS)
        return _settings_page(
            request,
            session,
            status_code=INVALID,
            token_form=form,
            token_errors=errors,
            token_error=form_error,
        )
    return page(
        request,
        "token_created.html",
        session,
        status_code=201,
        secret=new.token,
        row=_token_row(new.view),
    )


def _admin_only(session: WebSession) -> None:
    if not session.can_write:
        raise PermissionDenied("this needs the admin role; you are signed in as a viewer")


@router.get("/settings/tokens/{token_id}/revoke")
def confirm_revoke(request: Request, token_id: int, session: Viewer) -> Response:
    """Asks before a token is revoked; the POST of this page revokes it."""
    _admin_only(session)
    token = core(request).tokens.get(token_id)
    return page(request, "token_revoke.html", session, row=_token_row(token))


@router.post("/settings/tokens/{token_id}/revoke")
def revoke_token(request: Request, token_id: int, session: Writer) -> Response:
    core(request).tokens.revoke(token_id)
    return RedirectResponse(f"/settings?revoked={token_id}#tokens", status_code=303)
