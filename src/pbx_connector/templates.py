"""The template catalogue: every ready profile recipe, in one table.

A template names the source kind and the target, the settings the source needs (with
defaults), and the default key, variables and pre-filter. A profile copies these when it
is created; after that the profile is the user's to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pbx_connector.domain.targets import TARGETS
from pbx_connector.errors import NotFoundError


@dataclass(frozen=True)
class SettingSpec:
    name: str
    default: str = ""
    description: str = ""
    required: bool = False
    secret: bool = False
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Template:
    name: str
    label: str
    target: str
    source: str
    description: str
    available: bool = True
    settings: tuple[SettingSpec, ...] = ()
    variables: dict[str, str] = field(default_factory=dict)
    prefilter: str = ""
    key: str = ""

    def setting(self, name: str) -> SettingSpec | None:
        for s in self.settings:
            if s.name == name:
                return s
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "target": self.target,
            "source": self.source,
            "available": self.available,
            "description": self.description,
            "key": self.key,
            "prefilter": self.prefilter,
            "variables": dict(self.variables),
            "settings": [
                {
                    "name": s.name,
                    "default": s.default,
                    "description": s.description,
                    "required": s.required,
                    "secret": s.secret,
                    "choices": list(s.choices),
                }
                for s in self.settings
            ],
        }


#: Settings every profile has, whatever its source.
COMMON_SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("key", description="comma-separated field(s) identifying a record across runs"),
    SettingSpec(
        "max_delete",
        "10%",
        "a mirror run that would delete more than this (a number, or a percentage of the "
        "records the profile owns, at least 5) is aborted unless forced",
    ),
    SettingSpec(
        "region",
        "",
        "default country for phone numbers (e.g. DE); empty: the instance's default_region",
    ),
    SettingSpec(
        "outside_line_prefix",
        "",
        "dial prefix for an outside line to strip from "
        "numbers before normalising (e.g. 0); empty: the instance's setting",
    ),
)

CSV_SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("path", description="path to the CSV file on this machine", required=True),
    SettingSpec(
        "encoding",
        "utf-8",
        "utf-8 (with or without BOM), cp1252, latin-1, utf-16, any Python codec, or auto",
    ),
    SettingSpec("delimiter", ",", "field separator", choices=(",", ";", "tab", "|", "auto")),
    SettingSpec("line_separator", "auto", "line ends", choices=("auto", "crlf", "lf", "cr")),
    SettingSpec("enclosure", '"', "field enclosure", choices=('"', "'", "none")),
)


def _one_to_one(*names: str) -> dict[str, str]:
    return {n: "{{ " + n + " }}" for n in names}


def _variables(target: str, mapped: dict[str, str]) -> dict[str, str]:
    """Every target field, in the target's order; unmapped ones empty."""
    return {name: mapped.get(name, "") for name in TARGETS[target].field_names}


_CSV_PHONEBOOK = (
    "displayname",
    "phone",
    "givenname",
    "surname",
    "organisation",
    "email",
    "mobile",
    "homephone",
    "fax",
)
_CSV_USERS = (
    "username",
    "displayname",
    "givenname",
    "surname",
    "email",
    "extension",
    "mobile",
    "homephone",
    "fax",
    "organisation",
    "job",
)
_CSV_SPEEDDIALS = ("code", "number", "displayname")

_NOT_YET = "not available yet"


def _directory(name: str, label: str, target: str, source: str, what: str) -> Template:
    return Template(
        name=name,
        label=label,
        target=target,
        source=source,
        description=f"{what} ({_NOT_YET})",
        available=False,
        variables=_variables(target, {}),
    )


TEMPLATES: tuple[Template, ...] = (
    _directory(
        "ucs-users", "UCS User Sync", "users", "ucs", "users from Univention Corporate Server"
    ),
    _directory("ad-users", "AD User Sync", "users", "ad", "users from Active Directory"),
    _directory("ldap-users", "LDAP User Sync", "users", "ldap", "users from an LDAP directory"),
    Template(
        name="csv-users",
        label="CSV User Sync",
        target="users",
        source="csv",
        description="users from a CSV file, one column per field",
        settings=CSV_SETTINGS,
        variables=_variables("users", _one_to_one(*_CSV_USERS)),
        key="username",
    ),
    _directory(
        "ad-phonebook",
        "AD Phonebook Sync",
        "phonebook",
        "ad",
        "contacts and users with a phone number from Active Directory",
    ),
    Template(
        name="csv-phonebook",
        label="CSV Phonebook Sync",
        target="phonebook",
        source="csv",
        description="the global phonebook (or a private one, with an owner column) from a CSV file",
        settings=CSV_SETTINGS,
        variables=_variables("phonebook", _one_to_one(*_CSV_PHONEBOOK)),
        key="displayname,phone",
    ),
    _directory(
        "ldap-phonebook",
        "LDAP Phonebook Sync",
        "phonebook",
        "ldap",
        "entries with a phone number from an LDAP directory",
    ),
    _directory(
        "ad-speeddials",
        "AD Speeddial Sync",
        "speeddials",
        "ad",
        "speed dials from Active Directory",
    ),
    Template(
        name="csv-speeddials",
        label="CSV Speeddial Sync",
        target="speeddials",
        source="csv",
        description="speed dials from a CSV file",
        settings=CSV_SETTINGS,
        variables=_variables("speeddials", _one_to_one(*_CSV_SPEEDDIALS)),
        key="code",
    ),
    _directory(
        "ldap-speeddials",
        "LDAP Speeddial Sync",
        "speeddials",
        "ldap",
        "speed dials from an LDAP directory",
    ),
    _directory(
        "peer-phonebook",
        "pbx-connector Phonebook",
        "phonebook",
        "peer",
        "the global phonebook of another pbx-connector instance",
    ),
)

_BY_NAME = {t.name: t for t in TEMPLATES}


def get_template(name: str) -> Template:
    try:
        return _BY_NAME[name]
    except KeyError:
        known = ", ".join(t.name for t in TEMPLATES)
        raise NotFoundError(f"unknown template {name!r}; templates: {known}") from None


def all_settings(template: Template) -> tuple[SettingSpec, ...]:
    return template.settings + COMMON_SETTINGS
