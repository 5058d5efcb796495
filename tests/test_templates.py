"""The template catalogue: the seed's templates, each consistent with its target and source."""

from __future__ import annotations

import json

import pytest

from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import TARGETS, clean_record
from pbx_connector.errors import ConfigError, NotFoundError
from pbx_connector.mapping import RowMapper, check_expression
from pbx_connector.sources.csv import CsvOptions
from pbx_connector.templates import (
    COMMON_SETTINGS,
    CSV_SETTINGS,
    EXTENSION_DIGITS,
    TEMPLATES,
    Template,
    all_settings,
    check_settings,
    get_template,
)

#: The templates of the seed manual (seed/connector.md), by the name this product gives
#: them and the target each writes. "USC User Sync" is the seed's typo for UCS; its
#: "mobydick Phonebook" is another instance of this product.
SEED_TEMPLATES = {
    "ucs-users": "users",
    "ad-users": "users",
    "ldap-users": "users",
    "csv-users": "users",
    "ad-phonebook": "phonebook",
    "csv-phonebook": "phonebook",
    "ldap-phonebook": "phonebook",
    "ad-speeddials": "speeddials",
    "csv-speeddials": "speeddials",
    "ldap-speeddials": "speeddials",
    "peer-phonebook": "phonebook",
}
SEED_LABELS = {
    "ad-users": "AD User Sync",
    "ldap-users": "LDAP User Sync",
    "csv-users": "CSV User Sync",
    "ad-phonebook": "AD Phonebook Sync",
    "csv-phonebook": "CSV Phonebook Sync",
    "ldap-phonebook": "LDAP Phonebook Sync",
    "ad-speeddials": "AD Speeddial Sync",
    "csv-speeddials": "CSV Speeddial Sync",
    "ldap-speeddials": "LDAP Speeddial Sync",
}
#: The seed's example CSV (its "Variables" tab).
SEED_HEADER = [
    "displayname", "phone", "givenname", "surname", "organisation", "email", "mobile",
    "homephone", "fax",
]  # fmt: skip
SEED_ROW = [
    "Max Muster - pascom [30000]", "+4999112345", "Max", "Muster", "pascom", "", "", "",
    "+4999112399",
]  # fmt: skip

ALL = pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.name)


def test_every_seed_template_is_in_the_catalogue() -> None:
    names = [t.name for t in TEMPLATES]
    assert len(names) == len(set(names))
    assert set(SEED_TEMPLATES) <= set(names)
    for name, target in SEED_TEMPLATES.items():
        assert get_template(name).target == target
    for name, label in SEED_LABELS.items():
        assert get_template(name).label == label


@pytest.mark.parametrize("name", ["csv-users", "csv-phonebook", "csv-speeddials"])
def test_csv_templates_are_available(name: str) -> None:
    template = get_template(name)
    assert template.available
    assert template.source == "csv"
    assert template.settings[: len(CSV_SETTINGS)] == CSV_SETTINGS


def test_get_template_returns_the_catalogue_entry() -> None:
    for template in TEMPLATES:
        assert get_template(template.name) is template


@pytest.mark.parametrize("name", ["csv", "CSV-Phonebook", "csv-phonebooks", ""])
def test_unknown_template_is_a_clear_error(name: str) -> None:
    with pytest.raises(NotFoundError) as info:
        get_template(name)
    message = str(info.value)
    assert f"unknown template {name!r}" in message
    assert "csv-phonebook" in message  # the known ones are listed
    assert info.value.exit_code == 2
    assert info.value.http_status == 404


@ALL
def test_target_and_source(template: Template) -> None:
    assert template.target in ("users", "phonebook", "speeddials")
    assert template.source in ("csv", "ldap", "ad", "ucs", "peer")
    assert template.label
    assert template.description


@ALL
def test_every_variable_names_a_field_of_its_target(template: Template) -> None:
    fields = TARGETS[template.target].field_names
    assert set(template.variables) <= set(fields)
    # In the target's order, so the variables tab reads like the record.
    assert list(template.variables) == [f for f in fields if f in template.variables]


@ALL
def test_every_expression_compiles(template: Template) -> None:
    for name, text in template.variables.items():
        check_expression(name, text)
    check_expression("pre-filter", template.prefilter)
    RowMapper.compile(template.variables, template.prefilter)


@ALL
def test_available_template_is_complete(template: Template) -> None:
    if not template.available:
        assert "not available yet" in template.description
        return
    spec = TARGETS[template.target]
    for f in spec.fields:
        if f.required:
            assert template.variables.get(f.name), f"{f.name} has no variable"
    assert template.key
    assert template.settings
    if template.source == "csv":
        # The file is given by one of path, share, url or upload: none alone is required.
        names = {s.name for s in template.settings}
        assert {"path", "use_share", "url", "upload"} <= names
    else:
        assert any(s.required for s in template.settings)


@ALL
def test_settings_are_consistent(template: Template) -> None:
    names = [s.name for s in all_settings(template)]
    assert len(names) == len(set(names)), "a setting is defined twice"
    for s in all_settings(template):
        assert s.description, s.name
        if s.choices:
            assert s.default in s.choices, s.name
        if "password" in s.name:
            assert s.secret, s.name
        if s.secret:
            assert s.default == "", s.name


@ALL
def test_as_dict_is_json(template: Template) -> None:
    data = json.loads(json.dumps(template.as_dict()))
    assert data["name"] == template.name
    assert data["target"] == template.target
    assert data["available"] == template.available
    assert data["variables"] == template.variables
    assert [s["name"] for s in data["settings"]] == [s.name for s in template.settings]


def test_common_settings_belong_to_every_template() -> None:
    names = {s.name for s in COMMON_SETTINGS}
    assert names == {
        "key",
        "max_delete",
        "region",
        "outside_line_prefix",
        "schedule",
        "schedule_timezone",
    }
    for template in TEMPLATES:
        assert set(all_settings(template)) >= set(COMMON_SETTINGS)
    assert get_template("csv-phonebook").setting("max_delete") is None  # common, not own


def test_csv_settings() -> None:
    template = get_template("csv-phonebook")
    path = template.setting("path")
    # Not required: the file may come from a share, a URL or an upload instead.
    assert path is not None and not path.required and path.default == ""
    defaults = {s.name: s.default for s in CSV_SETTINGS}
    assert defaults == {
        "path": "",
        "format": "csv",
        "encoding": "utf-8",
        "delimiter": ",",
        "line_separator": "auto",
        "enclosure": '"',
        "sheet": "1",
        "header_row": "1",
        "use_share": "no",
        "share": "",
        "share_port": "445",
        "share_user": "",
        "share_password": "",
        "url": "",
        "url_user": "",
        "url_password": "",
        "url_token": "",
        "ca_file": "",
        "verify": "yes",
        "timeout": "30",
        "max_size": "100",
        "redirects": "same-origin",
        "upload": "no",
    }
    secrets = {s.name for s in CSV_SETTINGS if s.secret}
    assert secrets == {"share_password", "url_password", "url_token"}
    assert template.setting("nonexistent") is None


def test_csv_setting_defaults_and_choices_are_accepted_by_the_csv_source() -> None:
    defaults = {s.name: s.default for s in CSV_SETTINGS}
    assert CsvOptions.from_settings(defaults) == CsvOptions()
    for setting in CSV_SETTINGS:
        for choice in setting.choices:
            CsvOptions.from_settings({**defaults, setting.name: choice})
    CsvOptions.from_settings({**defaults, "encoding": "auto"})


def test_csv_phonebook_maps_the_seed_columns_one_to_one() -> None:
    variables = get_template("csv-phonebook").variables
    for column in SEED_HEADER:
        assert variables[column] == "{{ " + column + " }}"
    mapper = RowMapper.compile({k: v for k, v in variables.items() if v})
    assert mapper.fields_used() == set(SEED_HEADER)
    assert mapper.missing_fields(SEED_HEADER) == []
    row = dict(zip(SEED_HEADER, SEED_ROW, strict=True))
    values = mapper.apply(row)
    assert values == row
    record = clean_record(TARGETS["phonebook"], values, PhoneNormaliser("DE"))
    assert record.values["displayname"] == "Max Muster - pascom [30000]"
    assert record.e164["phone"] == "+4999112345"
    assert record.e164["fax"] == "+4999112399"
    assert record.warnings == []


def test_csv_phonebook_key_is_a_pair_of_variables() -> None:
    template = get_template("csv-phonebook")
    assert template.key.split(",") == ["displayname", "phone"]
    assert all(template.variables[k] for k in template.key.split(","))


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        ("csv-users", ["username", "displayname", "email", "extension", "phone", "mobile"]),
        ("csv-speeddials", ["code", "number", "displayname"]),
    ],
)
def test_other_csv_templates_map_columns_of_the_same_name(name: str, columns: list[str]) -> None:
    variables = get_template(name).variables
    for column in columns:
        assert variables[column] == "{{ " + column + " }}"


USERS_TEMPLATES = ["ad-users", "ldap-users", "ucs-users", "csv-users"]


@pytest.mark.parametrize("name", USERS_TEMPLATES)
def test_users_templates_have_extension_digits(name: str) -> None:
    template = get_template(name)
    assert template.setting("extension_digits") is EXTENSION_DIGITS
    assert EXTENSION_DIGITS.default == ""
    check_settings(template, {"extension_digits": ""})
    check_settings(template, {"extension_digits": "3"})
    with pytest.raises(ConfigError) as info:
        check_settings(template, {"extension_digits": "many"})
    assert info.value.field == "extension_digits"


def test_only_users_templates_have_extension_digits() -> None:
    for template in TEMPLATES:
        has = template.setting("extension_digits") is not None
        assert has == (template.target == "users" and template.available), template.name
        check_settings(template, {})  # nothing set: nothing to check


@pytest.mark.parametrize(
    ("number", "extension", "e164"),
    [
        ("+49 991 12345-101", "101", "+4999112345101"),
        ("+49 89 3005", "", "+49893005"),
        ("3005", "3005", None),
    ],
)
@pytest.mark.parametrize("name", ["ad-users", "ldap-users", "ucs-users"])
def test_directory_users_keep_the_direct_number_and_derive_the_extension(
    name: str, number: str, extension: str, e164: str | None
) -> None:
    variables = get_template(name).variables
    assert variables["phone"] == "{{ telephoneNumber | first_value }}"
    mapper = RowMapper.compile({k: v for k, v in variables.items() if v})
    row = {attr: "" for attr in mapper.fields_used()}
    row.update(sAMAccountName="max", uid="max", telephoneNumber=[number, "+49 170 1"])
    values = mapper.apply(row)
    assert (values["phone"], values["extension"]) == (number, extension)
    record = clean_record(TARGETS["users"], values, PhoneNormaliser("DE"))
    assert record.e164["phone"] == e164
    assert record.values["extension"] == (extension or None)
    assert bool(record.warnings) == (not extension)
