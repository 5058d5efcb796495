"""Making and changing profiles: every setting is checked when it is set, not mid-run."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from pbx_connector.domain import schedule
from pbx_connector.domain.phone import is_valid_region
from pbx_connector.domain.targets import TARGETS
from pbx_connector.errors import ConfigError, PbxConnectorError, UsageError
from pbx_connector.mapping import check_expression, compile_variable
from pbx_connector.sources.files import file_is_given
from pbx_connector.sources.ldap import DIRECTORY_KINDS
from pbx_connector.sources.location import location_kind
from pbx_connector.sources.registry import check_source_settings, open_source
from pbx_connector.store.profiles import Profile
from pbx_connector.sync.plan import delete_limit
from pbx_connector.templates import Template, all_settings, check_settings, get_template

MODES = ("update", "mirror")
EXPORT_FORMAT = "pbx-connector-profile"
#: An export is a few KiB; anything much larger is not one.
MAX_EXPORT_SIZE = 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: Names that are addresses of their own: `/profiles/new` is the template overview, and
#: `POST /api/v1/profiles/import` imports an export.
RESERVED_NAMES = ("new", "import")


def check_name(name: str, origin: str | None = None) -> None:
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"{name!r} is not a valid profile name (letters, digits, . _ -; "
            "starting with a letter or digit)",
            field="name",
            source=origin,
        )
    if name.lower() in RESERVED_NAMES:
        raise UsageError(
            f"{name!r} cannot be a profile name: the pages and the API use it "
            f"(reserved: {', '.join(RESERVED_NAMES)})",
            field="name",
            source=origin,
        )


def new_profile(
    name: str, template_name: str, mode: str | None, assignments: Mapping[str, str]
) -> tuple[Profile, list[str]]:
    """A profile from a template. Returns it and notes worth showing the user."""
    check_name(name)
    template = get_template(template_name)
    if not template.available:
        raise UsageError(f"the template {template.name!r} is {template.description}")
    defaults = {s.name: s.default for s in all_settings(template) if not s.secret}
    defaults["key"] = template.key
    profile = Profile(
        name=name,
        template=template.name,
        target=template.target,
        source=template.source,
        mode=check_mode(mode or "mirror"),
        settings=defaults,
        variables=dict(template.variables),
        prefilter=template.prefilter,
    )
    apply_settings(profile, assignments)
    for s in all_settings(template):
        if s.required and not (profile.settings.get(s.name) or profile.secrets.get(s.name)):
            raise UsageError(
                f"the template {template.name!r} needs the setting {s.name!r}: {s.description}",
                field=s.name,
            )
    if template.source == "csv" and not file_is_given(profile.settings):
        raise UsageError(
            f"the template {template.name!r} needs the setting 'path', or a share "
            "(use_share=yes), a url, or an uploaded file (upload=yes): where the file is",
            field="path",
        )
    notes = fit_variables_to_source(profile)
    return profile, notes


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, not {mode!r}", field="mode")
    return mode


#: The settings that say where a file source's file is.
_FILE_SETTINGS = frozenset({"path", "use_share", "url", "upload"})


def apply_settings(profile: Profile, assignments: Mapping[str, str]) -> None:
    template = get_template(profile.template)
    specs = {s.name: s for s in all_settings(template)}
    for key, value in assignments.items():
        if key == "mode":
            profile.mode = check_mode(value)
            continue
        spec = specs.get(key)
        if spec is None:
            allowed = ", ".join(["mode", *specs])
            raise UsageError(
                f"unknown setting {key!r} for a {template.name} profile; settings: {allowed}",
                field=key,
            )
        if (
            spec.choices
            and value not in spec.choices
            and not (key == "delimiter" and len(value) == 1)
        ):
            raise UsageError(f"{key} must be one of {', '.join(spec.choices)}", field=key)
        if spec.required and not value.strip() and not spec.secret:
            raise ConfigError(f"{key} cannot be empty: {spec.description}", field=key)
        if spec.secret:
            if value:
                profile.secrets[key] = value
            else:
                profile.secrets.pop(key, None)
        else:
            profile.settings[key] = value
    path = profile.settings.get("path", "").strip()
    if (
        template.source == "csv"
        and _FILE_SETTINGS.intersection(assignments)
        and not file_is_given(profile.settings)
    ):
        raise ConfigError(
            "path cannot be empty: give the file's path, or read it from a share "
            "(use_share=yes), a url or an upload (upload=yes)",
            field="path",
        )
    if template.source == "csv" and path and location_kind(profile.settings).name == "local":
        # A local path is stored absolute: a scheduled run starts in another directory.
        # A path inside a share stays as typed (`test\\address.csv`).
        profile.settings["path"] = os.path.abspath(os.path.expanduser(path))
    validate_settings(profile, template)


def validate_settings(profile: Profile, template: Template) -> None:
    s = profile.settings
    check_settings(template, s)
    if "schedule" in s:
        s["schedule"] = schedule.normalise(s["schedule"])
    if "schedule_timezone" in s:
        s["schedule_timezone"] = s["schedule_timezone"].strip()
    check_source_settings(template.source, s, profile.secrets)
    delete_limit(s.get("max_delete", "10%"), 0)
    region = s.get("region", "")
    if region and not is_valid_region(region):
        raise ConfigError(f"{region!r} is not a country code phonenumbers knows", field="region")
    prefix = s.get("outside_line_prefix", "")
    if prefix and not prefix.isdigit():
        raise ConfigError("the outside-line prefix must be digits", field="outside_line_prefix")
    _check_key(profile)


_ATTRIBUTE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")


def _check_key(profile: Profile) -> None:
    """The key names target fields with a variable, or fields of the source: columns of
    the CSV file (checked when the file can be read now), attributes of a directory."""
    spec = TARGETS[profile.target]
    names = [n.strip() for n in profile.settings.get("key", "").split(",") if n.strip()]
    columns: set[str] | None = None
    for k in names:
        if k in spec.field_names:
            if not profile.variables.get(k, "").strip():
                raise ConfigError(
                    f"the key field {k!r} has no variable; set one first", field="key"
                )
            continue
        if profile.source in DIRECTORY_KINDS:
            if not _ATTRIBUTE.fullmatch(k):
                raise ConfigError(f"the key {k!r} is not an attribute name", field="key")
            continue
        if columns is None:
            columns = _source_fields(profile)
        if columns is not None and k not in columns:
            raise ConfigError(
                f"the key {k!r} is neither a {spec.label} field nor a column of the source",
                field="key",
            )


def _source_fields(profile: Profile) -> set[str] | None:
    """The source's fields when it can be read now (a file not there yet is no error).
    A file on a share or at a URL is not read here: a change of settings would log on to
    a server each time, and a wrong stored password would count toward its lockout."""
    if profile.source == "csv" and location_kind(profile.settings).name != "local":
        return None
    try:
        source = open_source(profile.source, profile.settings, profile.secrets, owner=profile.id)
        return set(source.fields())
    except PbxConnectorError:
        return None


def set_variables(profile: Profile, assignments: Mapping[str, str]) -> None:
    spec = TARGETS[profile.target]
    for name, text in assignments.items():
        if name not in spec.field_names:
            raise UsageError(
                f"{name!r} is not a field of a {spec.label}; fields: {', '.join(spec.field_names)}",
                field=name,
            )
        if spec.spec(name).required and not text.strip():
            raise UsageError(f"{name!r} is required and cannot be empty", field=name)
        check_expression(name, text)
        profile.variables[name] = text


def set_prefilter(profile: Profile, text: str) -> None:
    check_expression("pre-filter", text)
    profile.prefilter = text.strip()


def fit_variables_to_source(profile: Profile) -> list[str]:
    """When the source can be read now, empty the default variables that name columns it
    does not have (and say so), so that the first run does not fail on them. Directories
    are not contacted here: any attribute may be absent from an entry, so none is missing."""
    if profile.source != "csv":
        return []
    try:
        source = open_source(profile.source, profile.settings, profile.secrets, owner=profile.id)
        fields = set(source.fields())
    except PbxConnectorError as exc:
        return [f"could not read the source yet ({exc}); variables are the template's"]
    notes: list[str] = []
    spec = TARGETS[profile.target]
    for name, text in list(profile.variables.items()):
        if not text.strip():
            continue
        missing = compile_variable(name, text).fields - fields
        if not missing:
            continue
        if spec.spec(name).required:
            notes.append(
                f"variable {name!r} needs the column {sorted(missing)[0]!r}, which "
                "the source lacks: give the variable an expression over the source's columns"
            )
            continue
        profile.variables[name] = ""
        notes.append(
            f"variable {name!r} left empty: the source has no column {sorted(missing)[0]!r}"
        )
    return notes


def export_profile(profile: Profile) -> str:
    data: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "version": 1,
        "name": profile.name,
        "template": profile.template,
        "mode": profile.mode,
        "settings": dict(profile.settings),
        "variables": dict(profile.variables),
        "prefilter": profile.prefilter,
    }
    if profile.secrets:
        data["secrets_not_exported"] = sorted(profile.secrets)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def secret_setting_names(template_name: str) -> set[str]:
    """The settings of a template that are secrets (write-only, stored encrypted)."""
    return {s.name for s in all_settings(get_template(template_name)) if s.secret}


def import_profile(text: str, name: str | None, origin: str) -> Profile:
    if len(text) > MAX_EXPORT_SIZE:
        raise UsageError("not a profile export (too large)", source=origin)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"not a profile export: {exc.msg}", source=origin, line=exc.lineno
        ) from None
    except RecursionError:
        raise UsageError("not a profile export: nested too deeply", source=origin) from None
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise UsageError(
            f'not a pbx-connector profile export (no "format": "{EXPORT_FORMAT}")', source=origin
        )
    template = get_template(str(data.get("template", "")))
    profile = Profile(
        name=name or str(data.get("name", "")),
        template=template.name,
        target=template.target,
        source=template.source,
        mode=check_mode(str(data.get("mode", "mirror"))),
        settings={s.name: s.default for s in all_settings(template) if not s.secret},
        variables={n: "" for n in TARGETS[template.target].field_names},
        prefilter="",
    )
    check_name(profile.name, origin)
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise UsageError('"variables" must be an object', source=origin)
    set_variables(profile, {str(k): str(v) for k, v in variables.items()})
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise UsageError('"settings" must be an object', source=origin)
    apply_settings(profile, {str(k): str(v) for k, v in settings.items()})
    set_prefilter(profile, str(data.get("prefilter") or ""))
    validate_settings(profile, template)
    return profile
