"""The catalogue (templates, instance settings) and profiles: create, change, inspect,
export and import them; their variables and pre-filter; preview and evaluate them over
their source. Every route is one call into `app.catalog` or `app.profiles`.

Secrets (a bind password…) are write-only: a request gives them in `secrets`, apart from
`settings`, and no answer ever holds one; a view lists only their names in `secrets_set`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Mapping
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import Field

from pbx_connector.api.deps import Core, Reader, Writer
from pbx_connector.errors import ConfigError, NotFoundError, UsageError
from pbx_connector.models.base import Model, Page
from pbx_connector.models.catalog import InstanceSettings, TemplateView
from pbx_connector.models.profiles import (
    CreatedProfile,
    EvaluateResult,
    PreviewResult,
    ProfileSchedule,
    ProfileView,
)
from pbx_connector.service import App
from pbx_connector.service.preview import MAX_EVALUATE_ROWS, MAX_PREVIEW_ROWS

PROFILES = "/api/v1/profiles"
#: Where an imported export came from, as the core's messages name it.
IMPORT_ORIGIN = "request body"

Mode = Literal["update", "mirror"]
Order = Literal["name", "-name", "template"]
#: Written to the OpenAPI schema: a client may send these, never read them back.
_WRITE_ONLY: dict[str, Any] = {"writeOnly": True}


class _InvalidInputRoute(APIRoute):
    """The core raises a plain `UsageError` (HTTP 400) for a value it cannot take: an
    unknown setting, a value outside a setting's choices, an unknown target field. Over
    HTTP such a request is invalid input, which this API answers with 422 like every
    other invalid value, keeping the field the core named. Subclasses with a status of
    their own (404, 409, 401, 403) pass through unchanged."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except UsageError as exc:
                if exc.http_status != UsageError.http_status:
                    raise
                raise ConfigError(
                    exc.message, source=exc.source, line=exc.line, field=exc.field
                ) from None

        return answer


router = APIRouter(tags=["profiles"], route_class=_InvalidInputRoute)


# --- request bodies --------------------------------------------------------------------


class ConfigChange(Model):
    """Instance settings to change; those left out (or null) keep their value."""

    default_region: str | None = Field(
        default=None, description=InstanceSettings.meaning("default_region")
    )
    outside_line_prefix: str | None = Field(
        default=None, description=InstanceSettings.meaning("outside_line_prefix")
    )
    timezone: str | None = Field(default=None, description=InstanceSettings.meaning("timezone"))
    lookup_match: str | None = Field(
        default=None, description=InstanceSettings.meaning("lookup_match")
    )
    lookup_suffix_digits: str | None = Field(
        default=None, description=InstanceSettings.meaning("lookup_suffix_digits")
    )
    lookup_clients: str | None = Field(
        default=None, description=InstanceSettings.meaning("lookup_clients")
    )


class ScheduleChange(Model):
    """A schedule to set (`off` removes it), and optionally its time zone."""

    schedule: str = Field(
        description="every N minutes, every N hours, hourly, daily HH:MM, weekdays HH:MM, "
        "weekly DAY HH:MM, a cron expression, or off",
        examples=["daily 02:30", "*/15 * * * *"],
    )
    timezone: str | None = Field(
        default=None,
        description="time zone (Europe/Berlin); null keeps the profile's, '' follows the "
        "instance's",
    )


class ProfileCreate(Model):
    name: str
    template: str
    #: `mirror` unless given.
    mode: Mode | None = None
    settings: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict, json_schema_extra=_WRITE_ONLY)


class ProfileChange(Model):
    """Settings and secrets to change (those not named keep their value), and the mode."""

    settings: dict[str, str] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict, json_schema_extra=_WRITE_ONLY)
    mode: Mode | None = None


class Prefilter(Model):
    """The pre-filter, given and answered alike; empty lets every row through."""

    prefilter: str


class EvaluateRequest(Model):
    """Unsaved expressions to try; the profile's own are used where none are given."""

    variables: dict[str, str] | None = None
    prefilter: str | None = None
    limit: int = Field(default=5, ge=1, le=MAX_EVALUATE_ROWS)


# --- helpers ---------------------------------------------------------------------------


def _template(app: App, name: str) -> TemplateView:
    """The template a request body names. An unknown one is invalid input (422 naming the
    field), not a missing resource: the URL the client asked for does exist."""
    try:
        return app.catalog.template(name)
    except NotFoundError as exc:
        raise ConfigError(exc.message, field="template") from None


def _settings(
    app: App, template: str, settings: Mapping[str, str], secrets: Mapping[str, str]
) -> dict[str, str]:
    """Settings and secrets as one mapping for the core, each in its own place: a secret
    sent among the settings would look like a value that is echoed back, and a secret
    that is empty would silently remove a stored one. No message holds a value."""
    secret_names = app.profiles.secret_setting_names(template)
    for key in settings:
        if key in secret_names:
            raise ConfigError(f'{key!r} is a secret: send it in "secrets"', field=key)
    for key, value in secrets.items():
        if key not in secret_names:
            known = ", ".join(sorted(secret_names)) or "none"
            raise ConfigError(
                f"{key!r} is not a secret setting of the {template} template "
                f"(its secrets: {known})",
                field=key,
            )
        if not value.strip():
            raise ConfigError(f"an empty {key} is not allowed", field=key)
    return {**settings, **secrets}


def _created(response: Response, created: CreatedProfile) -> CreatedProfile:
    response.headers["Location"] = f"{PROFILES}/{created.profile.name}"
    return created


def _as_export(data: Mapping[str, Any]) -> str:
    """The body as the export text the core reads (and checks, size included)."""
    return json.dumps(data, ensure_ascii=False)


def _import_notes(app: App, data: Mapping[str, Any], view: ProfileView) -> list[str]:
    """Which secrets the export left out and must be set again: the names the export
    lists that are secret settings of the template (nothing else of the body is echoed)."""
    listed = data.get("secrets_not_exported")
    if not isinstance(listed, list):
        return []
    secret_names = app.profiles.secret_setting_names(view.template)
    missing = sorted({n for n in listed if isinstance(n, str) and n in secret_names})
    return [f'the secret {n!r} is not in an export: set it again in "secrets"' for n in missing]


# --- the catalogue ---------------------------------------------------------------------


@router.get("/templates")
def list_templates(app: Core, _: Reader) -> Page[TemplateView]:
    """Every template in the order of the template overview; unavailable ones included."""
    items = app.catalog.templates()
    return Page[TemplateView](items=items, total=len(items))


@router.get("/templates/{name}")
def get_template(name: str, app: Core, _: Reader) -> TemplateView:
    return app.catalog.template(name)


@router.get("/config")
def get_config(app: Core, _: Reader) -> InstanceSettings:
    return app.catalog.config()


@router.patch("/config")
def change_config(body: ConfigChange, app: Core, _: Writer) -> InstanceSettings:
    """Change instance settings, all or none: every value is checked before one is kept."""
    return app.catalog.set_config(body.model_dump(exclude_none=True))


# --- profiles --------------------------------------------------------------------------


@router.get("/profiles")
def list_profiles(
    app: Core,
    _: Reader,
    search: str | None = None,
    order: Order = "name",
    limit: Annotated[int, Query(ge=0, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
) -> Page[ProfileView]:
    """Profiles, searched by name or template."""
    return app.profiles.page(search=search, order=order, limit=limit, offset=offset)


@router.post("/profiles", status_code=201)
def create_profile(body: ProfileCreate, response: Response, app: Core, _: Writer) -> CreatedProfile:
    """A profile from a template; `notes` say what is worth knowing (default variables
    emptied because the CSV file lacks their column, a source not readable yet)."""
    template = _template(app, body.template)
    settings = _settings(app, template.name, body.settings, body.secrets)
    return _created(response, app.profiles.create(body.name, template.name, body.mode, settings))


@router.post("/profiles/import", status_code=201)
def import_profile(
    data: Annotated[dict[str, Any], Body()],
    response: Response,
    app: Core,
    _: Writer,
    name: str | None = None,
) -> CreatedProfile:
    """A profile from what `GET /profiles/{name}/export` gave (`?name=` renames it).
    Secrets are not in an export: the notes name those to set again."""
    try:
        view = app.profiles.import_(_as_export(data), name, IMPORT_ORIGIN)
    except NotFoundError as exc:  # the only thing an import looks up is its template
        raise ConfigError(exc.message, field="template") from None
    return _created(response, CreatedProfile(profile=view, notes=_import_notes(app, data, view)))


@router.get("/profiles/{name}")
def get_profile(name: str, app: Core, _: Reader) -> ProfileView:
    return app.profiles.get(name)


@router.patch("/profiles/{name}")
def change_profile(name: str, body: ProfileChange, app: Core, _: Writer) -> ProfileView:
    """Change settings, secrets and the mode; all are checked before any is kept."""
    current = app.profiles.get(name)
    values = _settings(app, current.template, body.settings, body.secrets)
    if body.mode is not None:
        values["mode"] = body.mode
    if not values:
        return current
    return app.profiles.update(name, values)


@router.delete("/profiles/{name}", status_code=204)
def delete_profile(name: str, app: Core, _: Writer, purge: bool = False) -> Response:
    """Delete a profile. Its records stay, as if made by hand, unless `purge=true`."""
    app.profiles.delete(name, purge=purge)
    return Response(status_code=204)


@router.get(
    "/profiles/{name}/export",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}}},
)
def export_profile(name: str, app: Core, _: Reader) -> Response:
    """The profile as a JSON file to import elsewhere: secrets are left out, only named."""
    return Response(
        app.profiles.export(name),
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}.json"'},
    )


@router.get("/profiles/{name}/variables")
def get_variables(name: str, app: Core, _: Reader) -> dict[str, str]:
    """Every field of the target with its expression; empty: the field is not managed."""
    return app.profiles.get(name).variables


@router.put("/profiles/{name}/variables")
def set_variables(
    name: str, body: Annotated[dict[str, str], Body()], app: Core, _: Writer
) -> dict[str, str]:
    """Set the expressions of the fields named; the others keep theirs. Each is compiled
    now, so that a typo is a 422 naming its field, not a failed run."""
    return app.profiles.set_variables(name, body).variables


@router.get("/profiles/{name}/prefilter")
def get_prefilter(name: str, app: Core, _: Reader) -> Prefilter:
    return Prefilter(prefilter=app.profiles.get(name).prefilter)


@router.put("/profiles/{name}/prefilter")
def set_prefilter(name: str, body: Prefilter, app: Core, _: Writer) -> Prefilter:
    return Prefilter(prefilter=app.profiles.set_prefilter(name, body.prefilter).prefilter)


@router.get("/profiles/{name}/schedule")
def get_schedule(name: str, app: Core, _: Reader) -> ProfileSchedule:
    """The schedule with its next runs, and whether its scheduled runs keep failing."""
    return ProfileSchedule(schedule=app.schedules.view(name))


@router.put("/profiles/{name}/schedule")
def set_schedule(name: str, body: ScheduleChange, app: Core, _: Writer) -> ProfileSchedule:
    """Set when the profile runs by itself; `serve` runs it from then on."""
    view = app.schedules.set(name, body.schedule, body.timezone)
    return ProfileSchedule(schedule=view.schedule)


@router.delete("/profiles/{name}/schedule", status_code=204)
def delete_schedule(name: str, app: Core, _: Writer) -> Response:
    """Stop running the profile by itself."""
    app.schedules.clear(name)
    return Response(status_code=204)


@router.post("/schedules/preview")
def preview_schedule(body: ScheduleChange, app: Core, _: Reader) -> ProfileSchedule:
    """What a schedule would be (its next runs), without saving it."""
    return ProfileSchedule(schedule=app.schedules.preview(body.schedule, body.timezone or ""))


@router.get("/profiles/{name}/preview")
def preview_profile(
    name: str,
    app: Core,
    _: Reader,
    limit: Annotated[int, Query(ge=1, le=MAX_PREVIEW_ROWS)] = 10,
) -> PreviewResult:
    """The first rows as the source gives them, before pre-filter and variables."""
    return app.profiles.preview(name, limit)


@router.post("/profiles/{name}/evaluate")
def evaluate_profile(
    name: str,
    app: Core,
    _: Reader,
    body: Annotated[EvaluateRequest | None, Body()] = None,
) -> EvaluateResult:
    """Unsaved variables and pre-filter over the first rows, as the Variables tab shows
    them while an administrator types. Nothing is saved, so a viewer may call it too: it
    shows no more than the preview does."""
    given = body or EvaluateRequest()
    return app.profiles.evaluate(
        name, variables=given.variables, prefilter=given.prefilter, limit=given.limit
    )
