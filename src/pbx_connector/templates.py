"""The template catalogue: every ready profile recipe, in one table.

A template names the source kind and the target, the settings the source needs (with
defaults), and the default key, variables and pre-filter. A profile copies these when it
is created; after that the profile is the user's to change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pbx_connector.domain import schedule
from pbx_connector.domain.targets import MAX_EXTENSION_DIGITS, TARGETS, parse_extension_digits
from pbx_connector.errors import NotFoundError


@dataclass(frozen=True)
class SettingSpec:
    name: str
    default: str = ""
    description: str = ""
    required: bool = False
    secret: bool = False
    choices: tuple[str, ...] = ()
    #: Checks a value when it is set; raises `ConfigError` naming the setting.
    check: Callable[[str], object] | None = None


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
    SettingSpec(
        "schedule",
        "",
        "when the profile runs by itself: every N minutes, every N hours, hourly, daily "
        "HH:MM, weekdays HH:MM, weekly DAY HH:MM, or a cron expression; empty or off: "
        "only when started",
        check=lambda value: schedule.is_off(value) or schedule.parse(value, "UTC"),
    ),
    SettingSpec(
        "schedule_timezone",
        "",
        "time zone of the schedule (e.g. Europe/Berlin); empty: the instance's timezone",
        check=lambda value: not value.strip() or schedule.check_timezone(value),
    ),
)

CSV_SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "path",
        description="path to the file on this machine; with use_share, the path inside the "
        "share (test\\address.csv or test/address.csv)",
    ),
    SettingSpec(
        "format",
        "csv",
        "csv, or xlsx (an Excel workbook: see sheet and header_row)",
        choices=("csv", "xlsx"),
    ),
    SettingSpec(
        "encoding",
        "utf-8",
        "utf-8 (with or without BOM), cp1252, latin-1, utf-16, any Python codec, or auto",
    ),
    SettingSpec("delimiter", ",", "field separator", choices=(",", ";", "tab", "|", "auto")),
    SettingSpec("line_separator", "auto", "line ends", choices=("auto", "crlf", "lf", "cr")),
    SettingSpec("enclosure", '"', "field enclosure", choices=('"', "'", "none")),
    SettingSpec("sheet", "1", "xlsx: the sheet to read, by name or 1-based position"),
    SettingSpec("header_row", "1", "xlsx: the row that holds the column names (1-based)"),
    # Where the file comes from: this machine (path), a share, a URL or an upload.
    SettingSpec(
        "use_share",
        "no",
        "read the file from an SMB/CIFS share (share, path, share_user, share_password)",
        choices=("yes", "no"),
    ),
    SettingSpec("share", "", "the share as a UNC path: \\\\server\\share"),
    SettingSpec("share_port", "445", "TCP port of the SMB server"),
    SettingSpec("share_user", "", "account on the share: user, DOMAIN\\user or user@domain"),
    SettingSpec("share_password", "", "password of share_user", secret=True),
    SettingSpec("url", "", "read the file from this https:// or http:// URL instead of a path"),
    SettingSpec("url_user", "", "user name for HTTP basic authentication at the URL"),
    SettingSpec("url_password", "", "password for HTTP basic authentication", secret=True),
    SettingSpec("url_token", "", "bearer token sent to the URL instead of a user", secret=True),
    SettingSpec("ca_file", "", "URL: PEM file of the CA that signed the server certificate"),
    SettingSpec(
        "verify",
        "yes",
        "URL: check the server certificate (turn off only to debug)",
        choices=("yes", "no"),
    ),
    SettingSpec("timeout", "30", "seconds to wait for the share or URL server to answer"),
    SettingSpec("max_size", "100", "URL: the largest file taken, in MiB"),
    SettingSpec(
        "redirects",
        "same-origin",
        "URL: follow redirects only to the same scheme and host, to any, or none",
        choices=("same-origin", "any", "none"),
    ),
    SettingSpec(
        "upload",
        "no",
        "read the file last uploaded to this profile (profile upload, or Upload on its page)",
        choices=("yes", "no"),
    ),
)


#: Another pbx-connector instance, read over its REST API with a viewer token.
PEER_SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec(
        "url",
        "",
        "address of the other instance, e.g. https://pbx2.example.test:8080",
        required=True,
    ),
    SettingSpec(
        "token", "", "an API token of the other instance with the viewer role", secret=True
    ),
    SettingSpec("ca_file", "", "PEM file of the CA that signed the other instance's certificate"),
    SettingSpec(
        "verify",
        "yes",
        "check the other instance's certificate (turn off only to debug)",
        choices=("yes", "no"),
    ),
    SettingSpec("timeout", "30", "seconds to wait for the other instance to answer"),
)
#: The fields of a peer's phonebook entry, and its id there as the key.
_PEER_PHONEBOOK = (
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

#: Users whose direct number has no DIN 5008 extension part (`+49 89 3005`): the
#: extension is the number's last digits, for companies whose DIDs end in it.
EXTENSION_DIGITS = SettingSpec(
    "extension_digits",
    "",
    "when a user's direct number (phone) has no extension part after a '-', take the "
    f"extension from its last N digits (1 to {MAX_EXTENSION_DIGITS}); empty: leave the "
    "extension empty and warn",
    check=parse_extension_digits,
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
    "phone",
    "mobile",
    "homephone",
    "fax",
    "organisation",
    "job",
)
_CSV_SPEEDDIALS = ("code", "number", "displayname")

_NOT_YET = "not available yet"


def _not_yet(name: str, label: str, target: str, source: str, what: str) -> Template:
    return Template(
        name=name,
        label=label,
        target=target,
        source=source,
        description=f"{what} ({_NOT_YET})",
        available=False,
        variables=_variables(target, {}),
    )


# --- directories ------------------------------------------------------------------------

_TLS_SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("ca_file", "", "PEM file of the CA that signed the server certificate"),
    SettingSpec(
        "verify",
        "yes",
        "check the server certificate (turn off only to debug)",
        choices=("yes", "no"),
    ),
    SettingSpec("timeout", "10", "seconds to wait for a server before trying the next"),
)
_SEARCH_SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("scope", "sub", "search scope below the base DN", choices=("sub", "one", "base")),
    SettingSpec("page_size", "500", "entries per page of the paged search (AD allows 1000)"),
    SettingSpec(
        "referrals", "ignore", "follow referrals to other servers", choices=("ignore", "follow")
    ),
)


def _ldap_settings(filterstr: str, security: str = "starttls") -> tuple[SettingSpec, ...]:
    return (
        SettingSpec(
            "uri",
            "",
            "ldap:// or ldaps:// URI(s) of the server; several, separated "
            "by spaces, are tried in order",
            required=True,
        ),
        SettingSpec(
            "security",
            security,
            "how the connection is protected",
            choices=("ldaps", "starttls", "none"),
        ),
        *_TLS_SETTINGS,
        SettingSpec("bind_dn", "", "DN to bind as; empty binds anonymously"),
        SettingSpec("bind_password", "", "password of the bind DN", secret=True),
        SettingSpec("base_dn", "", "where the search starts", required=True),
        SettingSpec("filter", filterstr, "LDAP search filter (RFC 4515)"),
        *_SEARCH_SETTINGS,
    )


def _ad_settings(filterstr: str) -> tuple[SettingSpec, ...]:
    return (
        SettingSpec("domain", "", "the AD domain name, e.g. example.test", required=True),
        SettingSpec(
            "server",
            "",
            "domain controller(s), host or URI; several, separated by "
            "spaces, are tried in order; empty: the domain name",
        ),
        SettingSpec(
            "security",
            "ldaps",
            "how the connection is protected",
            choices=("ldaps", "starttls", "none"),
        ),
        *_TLS_SETTINGS,
        SettingSpec("bind_user", "", "account to bind as: name (becomes name@domain), UPN or DN"),
        SettingSpec("bind_password", "", "password of the bind account", secret=True),
        SettingSpec("base_dn", "", "where the search starts; empty: the domain's root"),
        SettingSpec("filter", filterstr, "LDAP search filter (RFC 4515)"),
        SettingSpec("group", "", "only members of this group (DN or name), nested groups included"),
        *_SEARCH_SETTINGS,
    )


_AUTH_SETTING = SettingSpec(
    "configure_authentication",
    "no",
    "also set up authentication of the imported users against this directory",
    choices=("yes", "no"),
)

#: Enabled user accounts: objectCategory=person drops computer accounts (which are
#: objectClass=user too); bit 2 of userAccountControl is "account disabled".
AD_USERS_FILTER = (
    "(&(objectCategory=person)(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))"
)
AD_PHONEBOOK_FILTER = (
    "(&(|(objectClass=contact)(&(objectCategory=person)(objectClass=user)"
    "(!(userAccountControl:1.2.840.113556.1.4.803:=2))))"
    "(|(telephoneNumber=*)(mobile=*)(homePhone=*)))"
)
AD_SPEEDDIALS_FILTER = "(&(objectClass=contact)(ipPhone=*)(telephoneNumber=*))"
LDAP_USERS_FILTER = "(&(objectClass=inetOrgPerson)(uid=*))"
LDAP_PHONEBOOK_FILTER = (
    "(&(objectClass=inetOrgPerson)(|(telephoneNumber=*)(mobile=*)(homePhone=*)))"
)
LDAP_SPEEDDIALS_FILTER = "(&(objectClass=inetOrgPerson)(pager=*)(telephoneNumber=*))"
#: UCS marks a deactivated account with shadowExpire=1.
UCS_USERS_FILTER = "(&(objectClass=inetOrgPerson)(uid=*)(!(shadowExpire=1)))"

_UCS_SETTINGS: tuple[SettingSpec, ...] = (
    *(s for s in _ldap_settings(UCS_USERS_FILTER) if s.name != "base_dn"),
    SettingSpec("base_dn", "", "the UCS LDAP base, e.g. dc=example,dc=test", required=True),
    SettingSpec("search_base", "", "where users are searched; empty: cn=users,<base_dn>"),
    SettingSpec(
        "allowed_attribute",
        "univentionPhoneAllowed",
        "only users whose attribute has allowed_value (empty: all users)",
    ),
    SettingSpec("allowed_value", "1", "the value of allowed_attribute that allows a user"),
)

_FIRST = "{{ %s | first_value }}"
_AD_USER_VARS = {
    "username": "{{ sAMAccountName | lower }}",
    "displayname": "{{ displayName }}",
    "givenname": "{{ givenName }}",
    "surname": "{{ sn }}",
    "email": "{{ mail }}",
    "extension": "{{ telephoneNumber | extension }}",
    "phone": _FIRST % "telephoneNumber",
    "mobile": _FIRST % "mobile",
    "homephone": _FIRST % "homePhone",
    "fax": _FIRST % "facsimileTelephoneNumber",
    "organisation": "{{ company }}",
    "job": "{{ title }}",
}
_LDAP_USER_VARS = {
    "username": "{{ uid | first_value | lower }}",
    "displayname": "{{ displayName or (cn | first_value) }}",
    "givenname": "{{ givenName | first_value }}",
    "surname": "{{ sn | first_value }}",
    "email": "{{ mail | first_value }}",
    "extension": "{{ telephoneNumber | extension }}",
    "phone": _FIRST % "telephoneNumber",
    "mobile": _FIRST % "mobile",
    "homephone": _FIRST % "homePhone",
    "fax": _FIRST % "facsimileTelephoneNumber",
    "organisation": "{{ o | first_value }}",
    "job": "{{ title | first_value }}",
}
_UCS_USER_VARS = {**_LDAP_USER_VARS, "email": "{{ mailPrimaryAddress }}"}
_AD_PHONEBOOK_VARS = {
    "displayname": "{{ displayName or cn }}",
    "phone": _FIRST % "telephoneNumber",
    "givenname": "{{ givenName }}",
    "surname": "{{ sn }}",
    "organisation": "{{ company }}",
    "email": "{{ mail }}",
    "mobile": _FIRST % "mobile",
    "homephone": _FIRST % "homePhone",
    "fax": _FIRST % "facsimileTelephoneNumber",
}
_LDAP_PHONEBOOK_VARS = {
    **_AD_PHONEBOOK_VARS,
    "displayname": "{{ displayName or (cn | first_value) }}",
    "givenname": "{{ givenName | first_value }}",
    "surname": "{{ sn | first_value }}",
    "organisation": "{{ o | first_value }}",
    "email": "{{ mail | first_value }}",
}
_AD_SPEEDDIAL_VARS = {
    "code": "{{ ipPhone }}",
    "number": _FIRST % "telephoneNumber",
    "displayname": "{{ displayName or cn }}",
}
_LDAP_SPEEDDIAL_VARS = {
    "code": _FIRST % "pager",
    "number": _FIRST % "telephoneNumber",
    "displayname": "{{ displayName or (cn | first_value) }}",
}


def _directory(
    name: str,
    label: str,
    target: str,
    source: str,
    what: str,
    settings: tuple[SettingSpec, ...],
    variables: dict[str, str],
) -> Template:
    return Template(
        name=name,
        label=label,
        target=target,
        source=source,
        description=what,
        settings=settings + ((EXTENSION_DIGITS, _AUTH_SETTING) if target == "users" else ()),
        variables=_variables(target, variables),
        key="objectGUID" if source == "ad" else "entryUUID",
    )


TEMPLATES: tuple[Template, ...] = (
    _directory(
        "ucs-users",
        "UCS User Sync",
        "users",
        "ucs",
        "users from Univention Corporate Server that are allowed for the phone system",
        _UCS_SETTINGS,
        _UCS_USER_VARS,
    ),
    _directory(
        "ad-users",
        "AD User Sync",
        "users",
        "ad",
        "enabled user accounts from Active Directory (optionally of one group)",
        _ad_settings(AD_USERS_FILTER),
        _AD_USER_VARS,
    ),
    _directory(
        "ldap-users",
        "LDAP User Sync",
        "users",
        "ldap",
        "users (inetOrgPerson with a uid) from an LDAP directory",
        _ldap_settings(LDAP_USERS_FILTER),
        _LDAP_USER_VARS,
    ),
    Template(
        name="csv-users",
        label="CSV User Sync",
        target="users",
        source="csv",
        description="users from a CSV file, one column per field",
        settings=(*CSV_SETTINGS, EXTENSION_DIGITS),
        variables=_variables("users", _one_to_one(*_CSV_USERS)),
        key="username",
    ),
    _directory(
        "ad-phonebook",
        "AD Phonebook Sync",
        "phonebook",
        "ad",
        "contacts and enabled users with a phone number from Active Directory",
        _ad_settings(AD_PHONEBOOK_FILTER),
        _AD_PHONEBOOK_VARS,
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
        _ldap_settings(LDAP_PHONEBOOK_FILTER),
        _LDAP_PHONEBOOK_VARS,
    ),
    _directory(
        "ad-speeddials",
        "AD Speeddial Sync",
        "speeddials",
        "ad",
        "speed dials from AD contacts: the code in ipPhone, the number in telephoneNumber",
        _ad_settings(AD_SPEEDDIALS_FILTER),
        _AD_SPEEDDIAL_VARS,
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
        "speed dials from an LDAP directory: the code in pager, the number in telephoneNumber",
        _ldap_settings(LDAP_SPEEDDIALS_FILTER),
        _LDAP_SPEEDDIAL_VARS,
    ),
    Template(
        name="peer-phonebook",
        label="pbx-connector Phonebook",
        target="phonebook",
        source="peer",
        description="the global phonebook of another pbx-connector instance, read over its "
        "REST API with a viewer token",
        settings=PEER_SETTINGS,
        variables=_variables(
            "phonebook", _one_to_one(*_PEER_PHONEBOOK, "notes", "homepage", "customernumber")
        ),
        key="id",
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


def check_settings(template: Template, settings: Mapping[str, str]) -> None:
    """Run the checks of the template's settings and the common ones (`SettingSpec.check`)
    on the values given; raises `ConfigError` naming the first setting that is wrong."""
    for spec in all_settings(template):
        if spec.check is not None and spec.name in settings:
            spec.check(settings[spec.name])
