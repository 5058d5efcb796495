"""Profiles, the catalogue and instance settings through the application core, on SQLite
and PostgreSQL: what the store holds afterwards and what a face is given to show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pbx_connector.errors import (
    ConfigError,
    ConflictError,
    ExpressionError,
    NotFoundError,
    UsageError,
)
from pbx_connector.models.catalog import InstanceSettings
from pbx_connector.service import App
from pbx_connector.service.preview import MAX_EVALUATE_ROWS
from pbx_connector.store.profiles import Profile, get_profile
from pbx_connector.store.settings import DEFAULTS
from tests.helpers import PHONEBOOK_HEADER, USERS_HEADER, phonebook_row, records, write_csv
from tests.servers.slapd_fixtures import ScratchOU

SECRET = "Very-Secret-Pw1"


@pytest.fixture
def app(engine: Engine) -> App:
    return App(engine)


@pytest.fixture
def pb_csv(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "pb.csv",
        PHONEBOOK_HEADER,
        [
            phonebook_row("Max Muster", "+49 991 12345", organisation="pascom"),
            phonebook_row("Eva Extern", "0991 2900-100", organisation="ACME"),
            phonebook_row("Ida Intern", "", organisation="pascom", email="not-an-address"),
        ],
    )


def _ldap_profile(app: App, name: str = "dir") -> None:
    app.profiles.create(
        name,
        "ldap-users",
        settings={
            "uri": "ldap://127.0.0.1:1",
            "base_dn": "dc=example,dc=test",
            "bind_dn": "cn=reader,dc=example,dc=test",
            "bind_password": SECRET,
        },
    )


# --- create, update, list, get, delete -----------------------------------------------------


def test_create_list_get_update_delete(app: App, engine: Engine, pb_csv: Path) -> None:
    created = app.profiles.create("pb", "csv-phonebook", "update", {"path": str(pb_csv)})
    assert created.notes == []
    view = created.profile
    assert (view.name, view.template, view.target, view.source, view.mode) == (
        "pb",
        "csv-phonebook",
        "phonebook",
        "csv",
        "update",
    )
    assert view.settings["path"] == str(pb_csv) and view.settings["key"] == "displayname,phone"
    assert view.variables["displayname"] == "{{ displayname }}"
    assert view.created_at is not None and view.created_at.tzinfo is not None

    assert [p.name for p in app.profiles.list()] == ["pb"]
    assert app.profiles.get("pb") == view

    changed = app.profiles.update("pb", {"mode": "mirror", "delimiter": ";"})
    assert changed.mode == "mirror" and changed.settings["delimiter"] == ";"
    assert changed.id == view.id and changed.created_at == view.created_at
    with pytest.raises(UsageError, match="unknown setting 'colour'"):
        app.profiles.update("pb", {"colour": "blue", "mode": "update"})
    assert app.profiles.get("pb") == changed  # nothing of a refused change is kept

    variables = app.profiles.set_variables("pb", {"notes": "{{ organisation }}"}).variables
    assert variables["notes"] == "{{ organisation }}"
    with pytest.raises(ExpressionError) as error:
        app.profiles.set_variables("pb", {"notes": "{{ oops"})
    assert error.value.field == "notes"
    assert app.profiles.set_prefilter("pb", ' organisation == "pascom" ').prefilter == (
        'organisation == "pascom"'
    )

    with pytest.raises(ConflictError, match="exists already"):
        app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    assert app.profiles.delete("pb") == 0
    assert app.profiles.list() == []
    with pytest.raises(NotFoundError):
        app.profiles.get("pb")
    with pytest.raises(NotFoundError):
        app.profiles.delete("pb")


def test_a_change_made_meanwhile_is_not_lost(app: App, pb_csv: Path) -> None:
    """A change is prepared outside the write transaction (it may read the source); if
    another writer saved the profile in between, it is prepared again on what they saved."""
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    prepared: list[str] = []

    def change(profile: Profile) -> None:
        if not prepared:
            app.profiles.update("pb", {"delimiter": ";"})  # another writer, meanwhile
        prepared.append(profile.settings["delimiter"])
        profile.mode = "update"

    view = app.profiles._change("pb", change)
    assert prepared == [",", ";"]
    assert view.mode == "update" and view.settings["delimiter"] == ";"


def test_the_view_is_what_profile_show_json_always_printed(
    app: App, engine: Engine, pb_csv: Path
) -> None:
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    _ldap_profile(app)
    for view in app.profiles.list():
        with engine.connect() as conn:
            stored = get_profile(conn, view.name)
        # The schedule came later, as one more key (null without a schedule).
        assert view.model_dump(mode="json") == {**stored.public_dict(), "schedule": None}


def test_create_notes_default_variables_the_file_lacks(app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "short.csv", ["displayname", "phone"], [["A", "+49 991 1"]])
    created = app.profiles.create("s", "csv-phonebook", settings={"path": str(path)})
    assert any("'email' left empty" in note for note in created.notes)
    assert created.profile.variables["email"] == ""


def test_invalid_creations_name_what_is_wrong(app: App, pb_csv: Path) -> None:
    with pytest.raises(NotFoundError, match="unknown template 'nope'"):
        app.profiles.create("x", "nope")
    with pytest.raises(UsageError, match="needs the setting 'url'"):
        app.profiles.create("x", "peer-phonebook")
    with pytest.raises(UsageError, match="needs the setting 'path'"):
        app.profiles.create("x", "csv-phonebook")
    with pytest.raises(UsageError, match="not a valid profile name"):
        app.profiles.create("../x", "csv-phonebook", settings={"path": str(pb_csv)})
    with pytest.raises(UsageError, match="mode must be one of"):
        app.profiles.create("x", "csv-phonebook", "sometimes", {"path": str(pb_csv)})
    assert app.profiles.list() == []


def test_delete_keeps_records_unless_purged(
    app: App, engine: Engine, pb_csv: Path, tmp_path: Path
) -> None:
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    app.runs.run("pb")
    assert app.profiles.delete("pb") == 0
    kept = records(engine, "phonebook")
    assert len(kept) == 2 and all(r["origin"] is None for r in kept)
    other = write_csv(tmp_path / "o.csv", PHONEBOOK_HEADER, [phonebook_row("Olga", "+49 1")])
    app.profiles.create("o", "csv-phonebook", settings={"path": str(other)})
    app.runs.run("o")
    assert app.profiles.delete("o", purge=True) == 1
    assert len(records(engine, "phonebook")) == 2


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_are_named_never_shown_nor_exported(app: App) -> None:
    assert app.profiles.secret_setting_names("ldap-users") == {"bind_password"}
    assert app.profiles.secret_setting_names("csv-phonebook") == {
        "share_password",
        "url_password",
        "url_token",
    }
    _ldap_profile(app)
    view = app.profiles.get("dir")
    assert view.secrets_set == ["bind_password"] and view.secrets_unreadable is False
    exported = app.profiles.export("dir")
    shown = [
        view.model_dump_json(),
        json.dumps([v.model_dump(mode="json") for v in app.profiles.list()]),
        app.profiles.update("dir", {"timeout": "3"}).model_dump_json(),
        exported,
    ]
    for text in shown:
        assert SECRET not in text
    assert json.loads(exported)["secrets_not_exported"] == ["bind_password"]
    assert app.profiles.update("dir", {"bind_password": ""}).secrets_set == []


# --- export and import -------------------------------------------------------------------------


def test_export_import_round_trip(app: App, pb_csv: Path) -> None:
    app.profiles.create("pb", "csv-phonebook", "update", {"path": str(pb_csv)})
    app.profiles.set_variables("pb", {"notes": "{{ organisation }}", "fax": ""})
    app.profiles.set_prefilter("pb", 'phone != ""')
    text = app.profiles.export("pb")
    assert json.loads(text)["format"] == "pbx-connector-profile"
    copy = app.profiles.import_(text, "copy", "pb.json")
    original = app.profiles.get("pb")
    for field in ("template", "target", "source", "mode", "settings", "variables", "prefilter"):
        assert getattr(copy, field) == getattr(original, field)
    assert copy.id != original.id
    with pytest.raises(ConflictError):
        app.profiles.import_(text)  # its own name is taken
    with pytest.raises(UsageError, match="not a profile export") as error:
        app.profiles.import_("{ nope", origin="bad.json")
    assert error.value.source == "bad.json"
    assert [p.name for p in app.profiles.list()] == ["copy", "pb"]


# --- preview -----------------------------------------------------------------------------------


def test_preview_gives_the_first_rows_as_they_are(app: App, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text(
        "displayname,phone\nA,+49 1\nB,+49 2,extra\nC,+49 3\nD,+49 4\n", encoding="utf-8"
    )
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(path)})
    result = app.profiles.preview("pb", limit=2)
    assert result.source == str(path)
    assert result.fields == ["displayname", "phone"]
    assert result.rows == [
        {"displayname": "A", "phone": "+49 1"},
        {"displayname": "C", "phone": "+49 3"},
    ]
    assert [p.line for p in result.problems] == [3]
    assert len(app.profiles.preview("pb").rows) == 3
    with pytest.raises(UsageError, match="from 1 to"):
        app.profiles.preview("pb", limit=0)


# --- evaluate ----------------------------------------------------------------------------------


def test_evaluate_runs_unsaved_variables_over_the_first_rows(app: App, pb_csv: Path) -> None:
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    saved = app.profiles.get("pb")
    result = app.profiles.evaluate(
        "pb",
        variables={
            "notes": "{{ organisation }} / {{ displayname | upper }}",
            "customernumber": "{{ nosuchcolumn }}",
            "homepage": "{{ oops",
        },
        prefilter='organisation == "pascom"',
        limit=2,
    )
    assert app.profiles.get("pb") == saved  # nothing was saved
    assert result.profile == "pb" and result.source == str(pb_csv)
    assert result.source_fields == PHONEBOOK_HEADER
    assert result.variables["notes"] == "{{ organisation }} / {{ displayname | upper }}"
    assert result.variables["displayname"] == "{{ displayname }}"
    assert result.prefilter == 'organisation == "pascom"'
    assert list(result.errors) == ["homepage"]
    assert [(r.line, r.passes) for r in result.rows] == [(2, True), (3, False)]
    first, second = result.rows
    assert first.fields["displayname"].value == "Max Muster"
    assert first.fields["notes"].value == "pascom / MAX MUSTER"
    assert second.fields["notes"].value == "ACME / EVA EXTERN"
    # One broken field is that field's error only, on every row.
    for row in result.rows:
        assert "undefined" in (row.fields["customernumber"].error or "")
        assert row.fields["customernumber"].value is None
        assert row.fields["homepage"].error == result.errors["homepage"]
        assert row.fields["displayname"].error is None
    # An empty variable is a field the profile does not manage.
    assert first.fields["owner"].value is None and first.fields["owner"].error is None
    assert list(first.fields) == list(saved.variables)


def test_evaluate_reports_values_a_run_would_refuse_per_field(app: App, pb_csv: Path) -> None:
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    result = app.profiles.evaluate("pb", variables={"displayname": ""}, limit=3)
    assert result.errors == {"displayname": "is required, but its variable is empty"}
    third = result.rows[2]
    assert third.passes and third.fields["email"].error is not None
    assert "e-mail" in (third.fields["email"].error or "")
    assert third.fields["email"].value == "not-an-address"
    assert third.fields["organisation"].value == "pascom"
    assert result.rows[0].fields["phone"].warnings == []


def test_evaluate_uses_the_saved_expressions_by_default(app: App, pb_csv: Path) -> None:
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    app.profiles.set_prefilter("pb", 'organisation != "ACME"')
    result = app.profiles.evaluate("pb")
    assert result.prefilter == 'organisation != "ACME"' and result.errors == {}
    assert [r.passes for r in result.rows] == [True, False, True]
    cleared = app.profiles.evaluate("pb", prefilter="")
    assert [r.passes for r in cleared.rows] == [True, True, True]


def test_evaluate_marks_prefilter_errors(app: App, pb_csv: Path) -> None:
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    broken = app.profiles.evaluate("pb", prefilter="organisation ==")
    assert "pre-filter" in broken.errors
    assert all(not r.passes and r.prefilter_error for r in broken.rows)
    assert broken.rows[0].fields["displayname"].value == "Max Muster"
    failing = app.profiles.evaluate("pb", prefilter="nosuchcolumn == 1", limit=1)
    assert failing.errors == {}
    assert not failing.rows[0].passes
    assert "undefined" in (failing.rows[0].prefilter_error or "")


def test_evaluate_never_shows_a_password(app: App, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "u.csv",
        [*USERS_HEADER, "password", "pin"],
        [["ann", "Ann", "Ann", "A", "", "100", "Secret-Pw-42", "12"]],
    )
    app.profiles.create("u", "csv-users", settings={"path": str(path)})
    result = app.profiles.evaluate(
        "u", variables={"password": "{{ password }}", "pin": "{{ pin }}"}, limit=1
    )
    row = result.rows[0]
    assert row.fields["password"].hidden and row.fields["password"].value is None
    assert row.fields["pin"].error is not None and row.fields["pin"].value is None
    assert "Secret-Pw-42" not in result.model_dump_json()
    assert row.fields["username"].value == "ann"


def test_evaluate_refuses_what_is_not_a_field_or_too_many_rows(app: App, pb_csv: Path) -> None:
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    with pytest.raises(UsageError, match="'colour' is not a field") as error:
        app.profiles.evaluate("pb", variables={"colour": "{{ x }}"})
    assert error.value.field == "colour"
    with pytest.raises(UsageError, match="from 1 to"):
        app.profiles.evaluate("pb", limit=MAX_EVALUATE_ROWS + 1)
    with pytest.raises(NotFoundError):
        app.profiles.evaluate("nope")


@pytest.mark.slapd
def test_evaluate_over_a_directory_gives_what_a_run_gives(
    app: App, slapd_scratch: ScratchOU
) -> None:
    ou = slapd_scratch
    server = ou.server
    server.add(
        f"uid=gina,{ou.dn}",
        {
            "objectClass": ["top", "person", "organizationalPerson", "inetOrgPerson"],
            "uid": ["gina"],
            "cn": ["Gina Gold"],
            "sn": ["Gold"],
            "telephoneNumber": ["+49 991 12345-200"],
        },
    )
    app.profiles.create(
        "dir",
        "ldap-users",
        settings={
            "uri": server.uri,
            "ca_file": str(server.ca_file),
            "bind_dn": server.reader_dn,
            "bind_password": server.reader_password,
            "base_dn": ou.dn,
        },
    )
    result = app.profiles.evaluate("dir", limit=1)
    fields = result.rows[0].fields
    assert fields["username"].value == "gina"
    assert fields["extension"].value == "200"
    assert fields["displayname"].value == "Gina Gold"
    # An attribute the entry lacks is empty, as in a run, not an error.
    assert fields["email"].value == "" and fields["email"].error is None
    assert "mail" in result.source_fields
    assert server.reader_password not in result.model_dump_json()


# --- the catalogue and instance settings -------------------------------------------------------


def test_templates_carry_what_a_form_needs(app: App) -> None:
    templates = app.catalog.templates()
    assert templates[0].name == "ucs-users"
    assert all(t.available for t in templates)
    ad = app.catalog.template("ad-users")
    password = next(s for s in ad.settings if s.name == "bind_password")
    assert password.secret and not password.required
    assert next(s for s in ad.settings if s.name == "security").choices == [
        "ldaps",
        "starttls",
        "none",
    ]
    assert [s.name for s in ad.common_settings][:2] == ["key", "max_delete"]
    assert ad.all_settings()[-len(ad.common_settings) :] == ad.common_settings
    with pytest.raises(NotFoundError, match="unknown template"):
        app.catalog.template("nope")


def test_config_is_validated_and_all_or_nothing(app: App) -> None:
    assert app.catalog.config() == InstanceSettings(default_region="DE", outside_line_prefix="")
    changed = app.catalog.set_config({"default_region": " at ", "outside_line_prefix": "0"})
    assert changed == InstanceSettings(default_region="AT", outside_line_prefix="0")
    for values, field in (
        ({"default_region": "ZZ"}, "default_region"),
        ({"outside_line_prefix": "0a"}, "outside_line_prefix"),
        ({"default_region": "CH", "colour": "blue"}, "colour"),
    ):
        with pytest.raises(ConfigError) as error:
            app.catalog.set_config(values)
        assert error.value.field == field
    assert app.catalog.config() == changed


def test_instance_settings_model_matches_the_store_defaults() -> None:
    fields = InstanceSettings.model_fields
    assert list(fields) == list(DEFAULTS)
    for name, (default, meaning) in DEFAULTS.items():
        assert fields[name].default == default
        assert InstanceSettings.meaning(name) == meaning


@pytest.mark.parametrize("name", ["new", "NEW", "import"])
def test_names_the_pages_and_the_api_use_are_not_profile_names(
    app: App, pb_csv: Path, name: str
) -> None:
    with pytest.raises(UsageError, match="cannot be a profile name") as caught:
        app.profiles.create(name, "csv-phonebook", settings={"path": str(pb_csv)})
    assert caught.value.field == "name"
    app.profiles.create("newsletter", "csv-phonebook", settings={"path": str(pb_csv)})
    with pytest.raises(UsageError, match="cannot be a profile name"):
        app.profiles.import_(app.profiles.export("newsletter"), name=name)
