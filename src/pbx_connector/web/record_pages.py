"""The records' pages: Users, the Phonebook (global and private) and Speed dials.

Each target gets the same pages, made from one description of it (`Kind`): a list with
search (as you type with htmx, or a plain form), order by column and paging; a form to
add a record; a record's page with its Basic Data as a form and where it came from; and
a delete confirmation. A user's page also sets the password and the PIN, which are never
shown. Every rule is the core's (`app.records`): these pages turn form text into the
fields the core reads, and show its refusals next to the field they name, with what was
typed kept."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from pbx_connector.errors import (
    NotFoundError,
    PbxConnectorError,
    PermissionDenied,
    RowError,
    UsageError,
)
from pbx_connector.models.records import Record, RecordField
from pbx_connector.models.sessions import WebSession
from pbx_connector.service.records import (
    Secret,
    imported_warning,
    orderable_fields,
    record_fields,
)
from pbx_connector.web.render import page
from pbx_connector.web.routing import Form, HtmlRoute, Viewer, Writer, core, read_form

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

#: Records per page of a list.
PAGE_SIZE = 50
#: The phonebook selector's value for "every phonebook" (no username holds a `*`).
ALL_PHONEBOOKS = "*"
#: The id of the element a search as you type replaces.
RESULTS_ID = "results"
#: Up to this many private phonebooks, the Phonebook selector is a select; beyond, a text
#: field that suggests usernames as one types (a datalist).
OWNER_SELECT_MAX = 100

#: What a form calls each field (the seed's words where it has them).
LABELS: dict[str, str] = {
    "username": "Username",
    "displayname": "Display name",
    "givenname": "Given name",
    "surname": "Surname",
    "email": "E-mail",
    "extension": "Extension",
    "phone": "Phone",
    "mobile": "Mobile",
    "homephone": "Home phone",
    "fax": "Fax",
    "organisation": "Organisation",
    "job": "Job",
    "auth": "Authentication",
    "roles": "Roles",
    "enabled": "Enabled",
    "notes": "Notes",
    "homepage": "Homepage",
    "customernumber": "Customer number",
    "owner": "Owner",
    "code": "Code",
    "number": "Number",
    "password": "Password",
    "pin": "PIN",
}
#: A line under a field that says what it takes, where the label alone does not.
HINTS: dict[str, dict[str, str]] = {
    "users": {
        "username": "Letters of one script, digits and . _ @ + -; stored in lower case.",
        "phone": "The direct number (DID).",
        "extension": "Digits, * and #; unique.",
        "roles": "Separated by commas. admin or viewer lets the user sign in to these pages.",
    },
    "phonebook": {
        "owner": "Empty: the global phonebook. A username: that user's private phonebook.",
    },
    "speeddials": {"code": "Digits, * and #; unique."},
}
#: What each authentication method means, next to its value.
AUTH_CHOICES: dict[str, str] = {
    "internal": "internal: the password set here",
    "ldap": "ldap: checked against the LDAP server",
    "none": "none: cannot sign in",
}
#: The HTML input type of each kind of field (text when not listed).
INPUT_TYPES: dict[str, str] = {"phone": "tel", "email": "email", "url": "url"}
#: Messages of a page reached after a change, by the code in its `?notice=`.
NOTICES: dict[str, str] = {
    "added": "Added.",
    "deleted": "Deleted.",
    "password": "The password was set.",
    "pin": "The PIN was set.",
}


@dataclass(frozen=True)
class Column:
    """A column of a list: its heading and the field it sorts by ('' if none)."""

    label: str
    order: str = ""


@dataclass(frozen=True)
class Kind:
    """One target's pages."""

    target: str
    path: str
    title: str
    one: str
    many: str
    columns: tuple[Column, ...]
    list_template: str
    record_template: str
    row_template: str
    #: The field that names one record on its page.
    name_field: str

    @property
    def orderable(self) -> tuple[str, ...]:
        return orderable_fields(self.target)

    def name_of(self, record: Record) -> str:
        """How a page names one record: by the field named `name_field`."""
        return str(getattr(record, self.name_field, "") or record.id)


USERS = Kind(
    target="users",
    path="/users",
    title="Users",
    one="user",
    many="users",
    columns=(
        Column("Username", "username"),
        Column("Name", "displayname"),
        Column("Extension", "extension"),
        Column("Roles"),
        Column("Authentication", "auth"),
        Column("Origin"),
    ),
    list_template="users.html",
    record_template="user.html",
    row_template="_users_row.html",
    name_field="username",
)
PHONEBOOK = Kind(
    target="phonebook",
    path="/phonebook",
    title="Phonebook",
    one="phonebook entry",
    many="phonebook entries",
    columns=(
        Column("Name", "displayname"),
        Column("Phone", "phone"),
        Column("Organisation", "organisation"),
        Column("E-mail", "email"),
        Column("Phonebook", "owner"),
        Column("Origin"),
    ),
    list_template="phonebook.html",
    record_template="phonebook_entry.html",
    row_template="_phonebook_row.html",
    name_field="displayname",
)
SPEEDDIALS = Kind(
    target="speeddials",
    path="/speeddials",
    title="Speed dials",
    one="speed dial",
    many="speed dials",
    columns=(
        Column("Code", "code"),
        Column("Number", "number"),
        Column("Name", "displayname"),
        Column("Origin"),
    ),
    list_template="speeddials.html",
    record_template="speeddial.html",
    row_template="_speeddial_row.html",
    name_field="code",
)
KINDS: dict[str, Kind] = {k.target: k for k in (USERS, PHONEBOOK, SPEEDDIALS)}


# --- form text <-> the core's fields -------------------------------------------------------


def _as_text(value: object) -> str:
    """A record's value as a form shows it (and as the core reads it back)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _record_text(record: Record, fields: list[RecordField]) -> dict[str, str]:
    data = record.model_dump(mode="json")
    return {f.name: _as_text(data.get(f.name)) for f in fields}


def _submitted(form: Form, fields: list[RecordField]) -> dict[str, str]:
    """The fields a form sent, as text. A checkbox sends a hidden `false` and, when
    ticked, a `true` after it: the last value counts. A text area's line breaks come as
    CR LF and are kept as LF."""
    values: dict[str, str] = {}
    for f in fields:
        sent = form.getlist(f.name)
        if not sent:
            continue
        text = sent[-1] if f.kind == "bool" else sent[0]
        if f.multiline:
            text = text.replace("\r\n", "\n")
        values[f.name] = text
    return values


def _changed(submitted: Mapping[str, str], current: Mapping[str, str]) -> dict[str, str]:
    """Only what the form changed goes to the core: an edit of one field must not write
    (and re-check) the others."""
    return {
        name: text
        for name, text in submitted.items()
        if text.strip() != current.get(name, "").strip()
    }


def _field_errors(exc: PbxConnectorError, names: set[str]) -> tuple[dict[str, str], str]:
    """The core's refusal next to the field it names, or above the form."""
    if exc.field and exc.field in names:
        return {exc.field: exc.message}, ""
    return {}, exc.message


def _is_refusal(exc: PbxConnectorError) -> bool:
    """An error that says the input cannot be used as given: the form is shown again.
    A missing record is the error page (404) instead."""
    return isinstance(exc, UsageError | RowError) and not isinstance(exc, NotFoundError)


# --- lists ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListState:
    """What a list shows: the search, the phonebook, the order and the page."""

    search: str = ""
    owner: str = ""
    order: str = ""
    page_no: int = 1

    def link(self, path: str, **changes: Any) -> str:
        """This list's URL with some of its state changed (a page, an order)."""
        state = {
            "search": self.search,
            "owner": self.owner,
            "order": self.order,
            "page_no": self.page_no,
            **changes,
        }
        query = {k: str(v) for k, v in state.items() if v not in ("", None) and v != 1}
        return f"{path}?{urlencode(query)}" if query else path


def _page_number(text: str | None) -> int:
    if text and text.isascii() and text.isdigit() and 0 < len(text) < 10:
        return max(1, int(text))
    return 1


def _wants_results(request: Request) -> bool:
    """An htmx search as you type wants only the results; a history restore (the back
    button) wants the whole page."""
    headers = request.headers
    return (
        headers.get("hx-request") == "true"
        and headers.get("hx-target") == RESULTS_ID
        and headers.get("hx-history-restore-request") != "true"
    )


def _list_page(
    request: Request,
    session: WebSession,
    kind: Kind,
    *,
    search: str | None,
    order: str | None,
    page_no: str | None,
    owner: str | None = None,
) -> Response:
    state = ListState(
        search=(search or "").strip(),
        owner=(owner or "").strip(),
        order=(order or "").strip(),
        page_no=_page_number(page_no),
    )
    records = core(request).records
    owner_filter: str | None = None
    if kind.target == "phonebook":
        owner_filter = None if state.owner == ALL_PHONEBOOKS else state.owner
    errors: dict[str, str] = {}
    status = 200
    items: list[Any] = []
    total = 0
    exact = True
    try:
        listed = records.list(
            kind.target,
            search=state.search or None,
            owner=owner_filter,
            order=state.order or None,
            limit=PAGE_SIZE,
            offset=(state.page_no - 1) * PAGE_SIZE,
        )
        if not listed.items and listed.total and state.page_no > 1:
            # A page past the end (the list shrank): show the last one.
            last = -(-listed.total // PAGE_SIZE)
            state = ListState(state.search, state.owner, state.order, last)
            listed = records.list(
                kind.target,
                search=state.search or None,
                owner=owner_filter,
                order=state.order or None,
                limit=PAGE_SIZE,
                offset=(last - 1) * PAGE_SIZE,
            )
        items, total, exact = list(listed.items), listed.total, listed.total_exact
    except UsageError as exc:
        if isinstance(exc, NotFoundError):
            raise
        errors = {exc.field or "search": exc.message}
        status = exc.http_status
    fragment = _wants_results(request)
    # Every user's private phonebook, so that one without entries can be started here.
    owners = records.private_phonebooks() if kind.target == "phonebook" and not fragment else []
    if fragment:
        # htmx swaps only a successful answer; the refusal is shown in the results.
        status = 200
    context: dict[str, Any] = {
        "kind": kind,
        "items": items,
        "total": total,
        # A search counts only so far: "200+", and a full page may have a next one.
        "total_exact": exact,
        "state": state,
        "pages": max(1, -(-total // PAGE_SIZE))
        if exact
        else max(-(-total // PAGE_SIZE), state.page_no + (len(items) == PAGE_SIZE)),
        "errors": errors,
        "notice": NOTICES.get(request.query_params.get("notice", "")),
        "results_id": RESULTS_ID,
        "all_phonebooks": ALL_PHONEBOOKS,
        "owners": owners,
        "owner_select": len(owners) <= OWNER_SELECT_MAX,
        "nav": kind.target,
    }
    template = "_record_results.html" if fragment else kind.list_template
    return page(request, template, session, status_code=status, **context)


# --- a record's page -----------------------------------------------------------------------


def _record_page(
    request: Request,
    session: WebSession,
    kind: Kind,
    record: Record | None,
    *,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    form_error: str = "",
    secret_errors: Mapping[str, str] | None = None,
    notice: str | None = None,
    warnings: list[str] | None = None,
    status_code: int = 200,
    owner: str = "",
) -> Response:
    """The add form (no record yet) or a record's page."""
    fields = record_fields(kind.target)
    shown = dict(values) if values is not None else {}
    if values is None:
        if record is not None:
            shown = _record_text(record, fields)
        else:
            shown = {f.name: "" for f in fields}
            if kind.target == "users":
                shown.update(auth="internal", enabled="true")
            if kind.target == "phonebook":
                shown["owner"] = owner
    context: dict[str, Any] = {
        "kind": kind,
        "record": record,
        "name": kind.name_of(record) if record is not None else "",
        "fields": fields,
        "values": shown,
        "errors": dict(errors or {}),
        "form_error": form_error,
        "secret_errors": dict(secret_errors or {}),
        "notice": notice,
        "warnings": warnings or [],
        "labels": LABELS,
        "hints": HINTS.get(kind.target, {}),
        "auth_choices": AUTH_CHOICES,
        "input_types": INPUT_TYPES,
        "imported_warning": imported_warning,
        "back": _back_link(kind, record, owner),
        "nav": kind.target,
    }
    if kind.target == "users" and record is not None:
        username = getattr(record, "username", "")
        context["private_entries"] = (
            core(request).records.list("phonebook", owner=username, limit=0).total
        )
    return page(request, kind.record_template, session, status_code=status_code, **context)


def _back_link(kind: Kind, record: Record | None, owner: str = "") -> str:
    """The list a record belongs to (a private phonebook for its entries)."""
    if kind.target == "phonebook":
        owner = str(getattr(record, "owner", "")) if record is not None else owner
        if owner:
            return ListState(owner=owner).link(kind.path)
    return kind.path


def _writers_only(session: WebSession) -> None:
    """A form that only changes something is not for a viewer."""
    if not session.can_write:
        raise PermissionDenied("this needs the admin role; you are signed in as a viewer")


def _add_form(request: Request, session: WebSession, kind: Kind) -> Response:
    _writers_only(session)
    owner = request.query_params.get("owner", "") if kind.target == "phonebook" else ""
    return _record_page(request, session, kind, None, owner=owner.strip())


async def _add(request: Request, session: WebSession, kind: Kind) -> Response:
    fields = record_fields(kind.target)
    values = _submitted(await read_form(request), fields)
    try:
        record = core(request).records.add(kind.target, values)
    except PbxConnectorError as exc:
        if not _is_refusal(exc):
            raise
        errors, form_error = _field_errors(exc, {f.name for f in fields})
        return _record_page(
            request,
            session,
            kind,
            None,
            values={f.name: values.get(f.name, "") for f in fields},
            errors=errors,
            form_error=form_error,
            status_code=exc.http_status,
        )
    return RedirectResponse(f"{kind.path}/{record.id}?notice=added", status_code=303)


def _show(request: Request, session: WebSession, kind: Kind, ref: str) -> Response:
    record = core(request).records.get(kind.target, ref)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return _record_page(request, session, kind, record, notice=notice)


async def _edit(request: Request, session: WebSession, kind: Kind, ref: str) -> Response:
    records = core(request).records
    record = records.get(kind.target, ref)
    fields = record_fields(kind.target)
    current = _record_text(record, fields)
    submitted = _submitted(await read_form(request), fields)
    changes = _changed(submitted, current)
    if not changes:
        return _record_page(request, session, kind, record, notice="Nothing was changed.")
    try:
        result = records.edit(kind.target, record.id, changes)
    except PbxConnectorError as exc:
        if not _is_refusal(exc):
            raise
        errors, form_error = _field_errors(exc, {f.name for f in fields})
        return _record_page(
            request,
            session,
            kind,
            record,
            values={**current, **submitted},
            errors=errors,
            form_error=form_error,
            status_code=exc.http_status,
        )
    return _record_page(
        request, session, kind, result.record, notice="Saved.", warnings=result.warnings
    )


def _delete_form(
    request: Request,
    session: WebSession,
    kind: Kind,
    ref: str,
    *,
    error: str = "",
    status_code: int = 200,
) -> Response:
    _writers_only(session)
    record = core(request).records.get(kind.target, ref)
    return page(
        request,
        "_record_delete.html",
        session,
        status_code=status_code,
        kind=kind,
        record=record,
        name=kind.name_of(record),
        error=error,
        nav=kind.target,
    )


def _delete(request: Request, session: WebSession, kind: Kind, ref: str) -> Response:
    try:
        gone = core(request).records.delete(kind.target, ref)
    except PbxConnectorError as exc:
        if not _is_refusal(exc):
            raise
        return _delete_form(
            request, session, kind, ref, error=exc.message, status_code=exc.http_status
        )
    target = ListState(owner=str(getattr(gone, "owner", "") or "")).link(kind.path)
    joiner = "&" if "?" in target else "?"
    return RedirectResponse(f"{target}{joiner}notice=deleted", status_code=303)


async def _set_secret(request: Request, session: WebSession, ref: str, which: Secret) -> Response:
    """Set a password or PIN; on success the page comes back with the field empty. What
    was typed is never shown again, not even next to an error."""
    records = core(request).records
    record = records.get("users", ref)
    value = (await read_form(request)).get(which)
    try:
        records.set_secret(record.id, which, value)
    except PbxConnectorError as exc:
        if not _is_refusal(exc):
            raise
        return _record_page(
            request,
            session,
            USERS,
            record,
            secret_errors={which: exc.message},
            status_code=exc.http_status,
        )
    return RedirectResponse(f"{USERS.path}/{record.id}?notice={which}", status_code=303)


# --- routes --------------------------------------------------------------------------------


def _routes(kind: Kind) -> None:
    """The pages of one target under its path."""
    path = kind.path

    def add_form(request: Request, session: Viewer) -> Response:
        return _add_form(request, session, kind)

    async def add(request: Request, session: Writer) -> Response:
        return await _add(request, session, kind)

    def show(request: Request, ref: str, session: Viewer) -> Response:
        return _show(request, session, kind, ref)

    async def edit(request: Request, ref: str, session: Writer) -> Response:
        return await _edit(request, session, kind, ref)

    def delete_form(request: Request, ref: str, session: Viewer) -> Response:
        return _delete_form(request, session, kind, ref)

    def delete(request: Request, ref: str, session: Writer) -> Response:
        return _delete(request, session, kind, ref)

    handlers: list[tuple[str, str, Callable[..., Any]]] = [
        ("GET", f"{path}/new", add_form),
        ("POST", f"{path}/new", add),
        ("GET", f"{path}/{{ref}}", show),
        ("POST", f"{path}/{{ref}}", edit),
        ("GET", f"{path}/{{ref}}/delete", delete_form),
        ("POST", f"{path}/{{ref}}/delete", delete),
    ]
    for method, route, handler in handlers:
        handler.__name__ = f"{kind.target}_{handler.__name__}"
        router.add_api_route(route, handler, methods=[method])


@router.get("/users")
def users(
    request: Request,
    session: Viewer,
    search: str | None = None,
    order: str | None = None,
    page_no: str | None = None,
) -> Response:
    return _list_page(request, session, USERS, search=search, order=order, page_no=page_no)


@router.get("/phonebook")
def phonebook(
    request: Request,
    session: Viewer,
    search: str | None = None,
    owner: str | None = None,
    order: str | None = None,
    page_no: str | None = None,
) -> Response:
    return _list_page(
        request, session, PHONEBOOK, search=search, order=order, page_no=page_no, owner=owner
    )


@router.get("/speeddials")
def speeddials(
    request: Request,
    session: Viewer,
    search: str | None = None,
    order: str | None = None,
    page_no: str | None = None,
) -> Response:
    return _list_page(request, session, SPEEDDIALS, search=search, order=order, page_no=page_no)


@router.post("/users/{ref}/password")
async def set_password(request: Request, ref: str, session: Writer) -> Response:
    return await _set_secret(request, session, ref, "password")


@router.post("/users/{ref}/pin")
async def set_pin(request: Request, ref: str, session: Writer) -> Response:
    return await _set_secret(request, session, ref, "pin")


for _kind in KINDS.values():
    _routes(_kind)
