"""A profile's pages: the template overview (`Add`), the form that creates a profile from a
template, the profile with its tabs (Basic Data, Pre Filter, Variables, Mode, Schedule,
Preview, Runs), Save, Save and Simulate, Import Now, Export, Import profile and Delete;
on the Basic Data tab of a file profile, Upload file (the file it reads with `upload=yes`).

Every value is checked by the core (`profiles.check`) before anything is kept: a form with
a mistake comes back with each error next to its field, the input kept (secrets never
come back), and nothing saved."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from pbx_connector.errors import NotFoundError, PbxConnectorError
from pbx_connector.models.catalog import SettingView, TemplateView
from pbx_connector.models.profiles import EvaluateResult, FieldValue, ProfileView, ScheduleView
from pbx_connector.models.sessions import WebSession
from pbx_connector.models.uploads import UploadInfo
from pbx_connector.service import App
from pbx_connector.service.profiles import MAX_EXPORT_SIZE, PREFILTER
from pbx_connector.service.uploads import FORMAT_OF, MAX_UPLOAD_BYTES
from pbx_connector.web.pages import connector_page, next_run_view, slot_time
from pbx_connector.web.render import last_run_view, page
from pbx_connector.web.routing import (
    Checked,
    Form,
    HtmlRoute,
    Viewer,
    Writer,
    core,
    executor,
    read_form,
)

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

#: The tabs of a profile, in the seed's order: URL part and title.
TABS: dict[str, str] = {
    "basic": "Basic Data",
    "prefilter": "Pre Filter",
    "variables": "Variables",
    "mode": "Mode",
    "schedule": "Schedule",
    "preview": "Preview",
    "runs": "Runs",
}
#: Tabs with a form that Save keeps (the Schedule tab has its own routes).
SAVED_TABS = ("basic", "prefilter", "variables", "mode")
#: The settings the Schedule tab shows and keeps, not the Mode tab.
SCHEDULE_SETTINGS = ("schedule", "schedule_timezone")
#: The template overview's groups, by target, in the seed's order.
TARGET_GROUPS = {"users": "Users", "phonebook": "Phonebook", "speeddials": "Speed dials"}
#: Rows the Variables and Pre Filter tabs evaluate; rows the Preview tab shows.
EVALUATE_ROWS = 5
PREVIEW_ROWS = 10
#: Runs the Runs tab lists.
RUNS_SHOWN = 25
#: The source of the profiles that read a file, and so may have one uploaded.
FILE_SOURCE = "csv"

# Form field names: a setting, the "clear this secret" box, a variable.
SETTING = "s_"
CLEAR = "clear_"
VARIABLE = "v_"


# --- the template overview and creating a profile ---------------------------------------


@router.get("/profiles/new")
def template_overview(request: Request, session: Viewer) -> Response:
    """`Add`: every template, grouped by what it imports."""
    templates = core(request).catalog.templates()
    groups = [
        (label, [t for t in templates if t.target == target])
        for target, label in TARGET_GROUPS.items()
    ]
    return page(request, "profile_new.html", session, groups=groups)


def _new_form(
    request: Request,
    session: WebSession,
    template: TemplateView,
    *,
    status_code: int = 200,
    name: str = "",
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    defaults = {s.name: s.default for s in template.all_settings() if not s.secret}
    defaults["key"] = template.key
    return page(
        request,
        "profile_new_form.html",
        session,
        status_code=status_code,
        recipe=template,
        name=name,
        values={**defaults, **(values or {})},
        errors=errors or {},
        form_errors=_unplaced(errors or {}, ["name", *(s.name for s in template.all_settings())]),
    )


@router.get("/profiles/new/{template_name}")
def new_profile_form(request: Request, template_name: str, session: Viewer) -> Response:
    template = core(request).catalog.template(template_name)
    if not template.available:
        return page(
            request,
            "error.html",
            session,
            status_code=404,
            message=f"the template {template.label} is not available yet",
        )
    return _new_form(request, session, template)


@router.post("/profiles/new/{template_name}")
async def create_profile(request: Request, template_name: str, session: Writer) -> Response:
    app = core(request)
    template = app.catalog.template(template_name)
    form = await read_form(request)
    name = form.get("name").strip()
    settings = _settings_of(form, template.all_settings(), creating=True)
    try:
        created = app.profiles.create(name, template.name, settings=settings)
    except PbxConnectorError as exc:
        values = {k: v for k, v in settings.items() if k not in _secrets(template.all_settings())}
        return _new_form(
            request,
            session,
            template,
            status_code=exc.http_status,
            name=name,
            values=values,
            errors={exc.field or "form": exc.message},
        )
    # Shown here rather than after a redirect: the notes are this answer's alone.
    return _profile_page(
        request, session, created.profile, "basic", notes=created.notes, created=True
    )


# --- import and export --------------------------------------------------------------------


@router.post("/profiles/import")
async def import_profile(request: Request, session: Writer) -> Response:
    """Import profile: an export file, or its JSON pasted."""
    form = await read_form(request)
    name = form.get("name").strip()
    text = form.get("text")
    upload = form.files.get("file")
    origin = "the pasted text"
    if upload is not None and upload.filename:
        data = await upload.read(MAX_EXPORT_SIZE + 1)
        origin = upload.filename
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return _import_refused(request, session, "text", "the file is not UTF-8 text", form)
    if not text.strip():
        message = "choose an export file or paste its JSON"
        return _import_refused(request, session, "text", message, form)
    try:
        created = core(request).profiles.import_with_notes(text, name or None, origin)
    except PbxConnectorError as exc:
        where = "name" if exc.field == "name" else "text"
        return _import_refused(request, session, where, str(exc), form, exc.http_status)
    return _profile_page(
        request, session, created.profile, "basic", notes=created.notes, created=True
    )


def _import_refused(
    request: Request,
    session: WebSession,
    field: str,
    message: str,
    form: Form,
    status_code: int = 422,
) -> Response:
    return connector_page(
        request,
        session,
        status_code=status_code,
        errors={field: message},
        import_text=form.get("text"),
        import_name=form.get("name"),
    )


@router.get("/profiles/{name}/export")
def export_profile(request: Request, name: str, session: Viewer) -> Response:
    """The profile as a JSON file to import elsewhere; secrets are left out."""
    text = core(request).profiles.export(name)
    return Response(
        text,
        media_type="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="{name}.json"',
            "Cache-Control": "no-store",
        },
    )


# --- deleting -------------------------------------------------------------------------------


@router.get("/profiles/{name}/delete")
def delete_form(request: Request, name: str, session: Viewer) -> Response:
    profile = core(request).profiles.get(name)
    return page(request, "profile_delete.html", session, profile=profile)


@router.post("/profiles/{name}/delete")
async def delete_profile(request: Request, name: str, session: Writer) -> Response:
    form = await read_form(request)
    purge = form.get("purge") == "yes"
    purged = core(request).profiles.delete(name, purge=purge)
    return RedirectResponse(f"/?deleted=1&purged={purged}", status_code=303)


# --- Import Now ---------------------------------------------------------------------------


@router.post("/profiles/{name}/runs")
def import_now(request: Request, name: str, session: Writer) -> Response:
    """`Import Now`: a run is queued (trigger `web`) and carried out in the background by
    the same executor the API uses; the browser goes to the run's page, which follows it."""
    run = core(request).runs.request(name, dry_run=False, trigger="web")
    executor(request).submit(run.id)
    return RedirectResponse(f"/runs/{run.id}", status_code=303)


# --- evaluating unsaved expressions -----------------------------------------------------


@router.post("/profiles/{name}/evaluate")
async def evaluate(request: Request, name: str, session: Checked) -> Response:
    """The values the expressions typed so far give for the first rows; nothing is saved.
    htmx gets the values alone; a browser without scripts gets the whole tab."""
    app = core(request)
    profile = app.profiles.get(name)
    form = await read_form(request)
    tab = "prefilter" if form.get("tab") == "prefilter" else "variables"
    variables = _variables_of(form, profile) if tab == "variables" else None
    prefilter = form.get("prefilter") if tab == "prefilter" else None
    evaluation = _evaluation(app, name, variables, prefilter)
    if request.headers.get("hx-request"):
        template = "_profile_values.html" if tab == "variables" else "_profile_rows.html"
        return page(request, template, session, profile=profile, ev=evaluation, oob=True)
    values = {**profile.variables, **(variables or {})}
    if prefilter is not None:
        values[PREFILTER] = prefilter
    return _profile_page(request, session, profile, tab, values=values, evaluation=evaluation)


def _evaluation(
    app: App, name: str, variables: dict[str, str] | None, prefilter: str | None
) -> dict[str, Any]:
    try:
        result = app.profiles.evaluate(
            name, variables=variables, prefilter=prefilter, limit=EVALUATE_ROWS
        )
    except PbxConnectorError as exc:
        return {"error": str(exc), "field": exc.field}
    return _evaluation_view(result)


def _value_view(value: FieldValue) -> dict[str, Any]:
    if value.error is not None:
        return {"kind": "error", "text": value.error}
    if value.hidden:
        return {"kind": "hidden", "text": "(a value, not shown)"}
    if value.value is None:
        return {"kind": "unmanaged", "text": "not imported"}
    if value.value == "":
        return {"kind": "empty", "text": "(empty)"}
    return {"kind": "value", "text": value.value, "warnings": value.warnings}


def _evaluation_view(result: EvaluateResult) -> dict[str, Any]:
    """Per field: its compile error, or what it gives on each row."""
    fields: dict[str, dict[str, Any]] = {}
    for field in result.variables:
        fields[field] = {
            "error": result.errors.get(field),
            "rows": [
                {"line": row.line, "passes": row.passes, **_value_view(row.fields[field])}
                for row in result.rows
            ],
        }
    return {
        "error": None,
        "source": result.source,
        "source_fields": result.source_fields,
        "prefilter_error": result.errors.get(PREFILTER),
        "rows": result.rows,
        "fields": fields,
        "problems": result.problems,
    }


# --- the profile and its tabs -------------------------------------------------------------


def _profile_page(
    request: Request,
    session: WebSession,
    profile: ProfileView,
    tab: str,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notes: list[str] | None = None,
    created: bool = False,
    saved: bool = False,
    notice: str = "",
    evaluation: dict[str, Any] | None = None,
    schedule: dict[str, Any] | None = None,
    uploaded: UploadInfo | None = None,
    upload_error: str = "",
) -> Response:
    app = core(request)
    template = app.catalog.template(profile.template)
    context: dict[str, Any] = {}
    if tab == "schedule":
        context["sp"] = schedule if schedule is not None else _schedule_shown(profile.schedule)
    if tab in ("variables", "prefilter") and evaluation is None:
        unsaved = values or {}
        variables = (
            {k: v for k, v in unsaved.items() if k in profile.variables}
            if tab == "variables"
            else None
        )
        prefilter = unsaved.get(PREFILTER) if tab == "prefilter" else None
        evaluation = _evaluation(app, profile.name, variables or None, prefilter)
    if tab == "preview":
        try:
            context["preview"] = app.profiles.preview(profile.name, limit=PREVIEW_ROWS)
        except PbxConnectorError as exc:
            context["preview_error"] = str(exc)
    if tab == "basic" and profile.source == FILE_SOURCE:
        context["upload"] = _upload_view(
            uploaded if uploaded is not None else app.uploads.info(profile.name),
            just_uploaded=uploaded is not None,
            error=upload_error,
            current_format=profile.settings.get("format", "") or "csv",
        )
    if tab == "runs":
        listed = app.runs.list(profile.name, limit=RUNS_SHOWN)
        context["runs"] = [last_run_view(r) for r in listed.items]
        context["runs_total"] = listed.total
    # The schedule has a tab of its own; the Mode tab shows the other common settings.
    common = [s for s in template.common_settings if s.name not in SCHEDULE_SETTINGS]
    settings = template.settings if tab == "basic" else common
    known = {
        "basic": [s.name for s in template.settings],
        "mode": ["mode", *(s.name for s in common)],
        "prefilter": [PREFILTER],
        "variables": list(profile.variables),
        "schedule": list(SCHEDULE_SETTINGS),
    }.get(tab, [])
    shown_values = {**profile.settings, "mode": profile.mode, PREFILTER: profile.prefilter}
    if tab == "variables":
        shown_values = dict(profile.variables)
    last = app.runs.list(profile.name, limit=1).items
    return page(
        request,
        "profile.html",
        session,
        status_code=status_code,
        profile=profile,
        recipe=template,
        tab=tab,
        tabs=TABS,
        saves=tab in SAVED_TABS,
        settings=settings,
        values={**shown_values, **(values or {})},
        errors=errors or {},
        form_errors=_unplaced(errors or {}, known),
        notes=notes or [],
        created=created,
        saved=saved,
        notice=notice,
        ev=evaluation,
        last=last_run_view(last[0]) if last else None,
        next_run=next_run_view(profile.schedule),
        **context,
    )


@router.get("/profiles/{name}")
def profile(request: Request, name: str, session: Viewer) -> Response:
    return _profile_page(request, session, core(request).profiles.get(name), "basic")


@router.get("/profiles/{name}/{tab}")
def profile_tab(
    request: Request, name: str, tab: str, session: Viewer, saved: int = 0, removed: int = 0
) -> Response:
    if tab == "upload":
        # The address an upload's answer leaves in the browser: its place on Basic Data.
        return RedirectResponse(f"/profiles/{quote(name, safe='')}/basic#upload", 303)
    if tab not in TABS:
        return page(request, "error.html", session, status_code=404, message="no such page")
    view = core(request).profiles.get(name)
    notice = (
        "The schedule was removed: the profile runs only when it is started."
        if removed and tab == "schedule"
        else ""
    )
    return _profile_page(request, session, view, tab, saved=bool(saved), notice=notice)


# --- the Schedule tab -----------------------------------------------------------------------


def _schedule_shown(
    view: ScheduleView | None, error: PbxConnectorError | None = None
) -> dict[str, Any]:
    """What the Schedule tab shows under its fields: the zone and the next runs of a
    schedule (None: no schedule), or the error of one that is wrong and the field it names."""
    if error is not None:
        return {"view": None, "runs": [], "error": error.message, "field": error.field}
    runs = [(iso, slot_time(iso)) for iso in view.next_runs] if view else []
    return {"view": view, "runs": runs, "error": None, "field": None}


def _schedule_typed(app: App, expression: str, zone: str) -> dict[str, Any]:
    try:
        return _schedule_shown(app.schedules.preview(expression, zone))
    except PbxConnectorError as exc:
        return _schedule_shown(None, exc)


def _schedule_form(form: Form) -> tuple[str, str | None]:
    """The schedule and time zone a form gives; a form without the zone keeps the
    profile's."""
    zone = form.get("schedule_timezone") if "schedule_timezone" in form.fields else None
    return form.get("schedule"), zone


@router.post("/profiles/{name}/schedule/preview")
async def schedule_preview(request: Request, name: str, session: Checked) -> Response:
    """The next runs of the schedule typed so far; nothing is saved. htmx gets them alone
    (with any error beside its field); a browser without scripts gets the whole tab."""
    app = core(request)
    profile = app.profiles.get(name)
    expression, zone = _schedule_form(await read_form(request))
    shown = _schedule_typed(app, expression, zone or "")
    if request.headers.get("hx-request"):
        return page(request, "_profile_schedule_next.html", session, sp=shown, oob=True)
    values = {"schedule": expression, "schedule_timezone": zone or ""}
    return _profile_page(request, session, profile, "schedule", values=values, schedule=shown)


@router.post("/profiles/{name}/schedule")
async def save_schedule(request: Request, name: str, session: Writer) -> Response:
    """Save: the schedule and its time zone are checked by the core and kept together,
    or neither is (the form comes back with the error beside its field)."""
    app = core(request)
    profile = app.profiles.get(name)
    expression, zone = _schedule_form(await read_form(request))
    try:
        app.schedules.set(name, expression, zone)
    except PbxConnectorError as exc:
        values = {"schedule": expression}
        if zone is not None:
            values["schedule_timezone"] = zone
        return _profile_page(
            request,
            session,
            profile,
            "schedule",
            status_code=exc.http_status,
            values=values,
            errors={exc.field or "form": exc.message},
            schedule=_schedule_typed(app, expression, zone or ""),
        )
    return RedirectResponse(f"/profiles/{name}/schedule?saved=1", status_code=303)


@router.post("/profiles/{name}/schedule/remove")
def remove_schedule(request: Request, name: str, session: Writer) -> Response:
    """Remove schedule: the profile runs only when started (its time zone stays set)."""
    core(request).schedules.clear(name)
    return RedirectResponse(f"/profiles/{name}/schedule?removed=1", status_code=303)


# --- Upload file (Basic Data of a file profile) ----------------------------------------------


def _formats_by_extension() -> list[tuple[str, list[str]]]:
    """How the core reads an uploaded file, by its name's extension: each format with
    its extensions (the core's own table)."""
    formats: dict[str, list[str]] = {}
    for extension, fmt in FORMAT_OF.items():
        formats.setdefault(fmt, []).append(extension)
    return list(formats.items())


def _upload_view(
    info: UploadInfo | None,
    *,
    just_uploaded: bool = False,
    error: str = "",
    current_format: str = "csv",
) -> dict[str, Any]:
    """What the Basic Data tab shows of the uploaded file: the core's details of the
    last upload (None: nothing uploaded yet), that it was just uploaded (with the core's
    notes), a refusal to show beside the file field, and how a file is read (from the
    core's table and limit)."""
    details = None
    done = ""
    if just_uploaded and info is not None:
        done = f"Uploaded {info.name!r}: the profile reads it from now on."
    if info is not None:
        details = {
            "name": info.name,
            "size": f"{info.size:,} bytes",
            "sha256": info.sha256,
            "uploaded_at": info.uploaded_at.isoformat(timespec="seconds"),
            "format": info.format,
        }
    return {
        "info": details,
        "done": done,
        "notes": info.notes if done and info is not None else [],
        "error": error,
        "formats": _formats_by_extension(),
        "accept": ",".join(FORMAT_OF),
        "max_mib": MAX_UPLOAD_BYTES // (1024 * 1024),
        "current_format": current_format,
    }


@router.post("/profiles/{name}/upload")
async def upload_file(request: Request, name: str, session: Writer) -> Response:
    """Upload file: the core keeps the file as the one the profile reads (`upload=yes`,
    `format` from the name's extension), or refuses it and keeps the previous one; its
    refusal is shown beside the file field."""
    app = core(request)
    profile = app.profiles.get(name)
    form = await read_form(request)
    upload = form.files.get("file")
    if upload is None or not upload.filename:
        return _profile_page(
            request, session, profile, "basic", status_code=422, upload_error="choose a file"
        )
    try:
        info = await run_in_threadpool(app.uploads.upload, name, upload.file, upload.filename)
    except NotFoundError:
        raise
    except PbxConnectorError as exc:
        shown = app.profiles.get(name)
        # Beside the file field; a profile that reads no file has none: above its form.
        placed = shown.source == FILE_SOURCE
        return _profile_page(
            request,
            session,
            shown,
            "basic",
            status_code=exc.http_status,
            upload_error=exc.message if placed else "",
            errors=None if placed else {"form": exc.message},
        )
    finally:
        await upload.close()
    # Shown here rather than after a redirect: the notes are this answer's alone.
    return _profile_page(request, session, app.profiles.get(name), "basic", uploaded=info)


# --- Save --------------------------------------------------------------------------------------


@router.post("/profiles/{name}/{tab}")
async def save(request: Request, name: str, tab: str, session: Writer) -> Response:
    """Save (or Save and Simulate) the tab's form: every value is checked first, and
    nothing is kept while any is wrong."""
    if tab not in SAVED_TABS:
        return page(request, "error.html", session, status_code=404, message="no such page")
    app = core(request)
    profile = app.profiles.get(name)
    template = app.catalog.template(profile.template)
    form = await read_form(request)
    settings: dict[str, str] = {}
    variables: dict[str, str] | None = None
    prefilter: str | None = None
    if tab == "basic":
        settings = _settings_of(form, template.settings)
    elif tab == "mode":
        common = [s for s in template.common_settings if s.name not in SCHEDULE_SETTINGS]
        settings = _settings_of(form, common)
        if "mode" in form.fields:
            settings["mode"] = form.get("mode")
    elif tab == "variables":
        variables = _variables_of(form, profile)
    else:
        prefilter = form.get("prefilter")
    kept = {k: v for k, v in settings.items() if k not in _secrets(template.all_settings())}
    kept.update(variables or {})
    if prefilter is not None:
        kept[PREFILTER] = prefilter
    errors = app.profiles.check(name, settings=settings, variables=variables, prefilter=prefilter)
    if not errors:
        try:
            app.profiles.save(name, settings=settings, variables=variables, prefilter=prefilter)
        except PbxConnectorError as exc:
            errors = {exc.field or "form": exc.message}
    if errors:
        return _profile_page(
            request, session, profile, tab, status_code=422, values=kept, errors=errors
        )
    if form.get("then") == "simulate":
        run = app.runs.request(name, dry_run=True, trigger="web")
        executor(request).submit(run.id)
        return RedirectResponse(f"/runs/{run.id}", status_code=303)
    return RedirectResponse(f"/profiles/{name}/{tab}?saved=1", status_code=303)


# --- reading forms ---------------------------------------------------------------------------


def _secrets(specs: list[SettingView]) -> set[str]:
    return {s.name for s in specs if s.secret}


def _settings_of(form: Form, specs: list[SettingView], creating: bool = False) -> dict[str, str]:
    """The settings a form gives. A secret left empty keeps the stored one; its "clear"
    box removes it. When creating, empty settings keep the template's defaults."""
    settings: dict[str, str] = {}
    for spec in specs:
        key = SETTING + spec.name
        if key not in form.fields and not (spec.secret and CLEAR + spec.name in form.fields):
            continue
        value = form.get(key)
        if spec.secret:
            if value:
                settings[spec.name] = value
            elif form.get(CLEAR + spec.name) == "yes" and not creating:
                settings[spec.name] = ""
        elif not creating or value.strip():
            settings[spec.name] = value
    return settings


def _variables_of(form: Form, profile: ProfileView) -> dict[str, str]:
    return {
        field: form.get(VARIABLE + field)
        for field in profile.variables
        if VARIABLE + field in form.fields
    }


def _unplaced(errors: dict[str, str], fields: list[str]) -> list[str]:
    """Errors about no field the form shows: said at the top of the form."""
    return [message for field, message in errors.items() if field not in fields]
