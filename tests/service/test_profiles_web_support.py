"""What the core gives a form (the web pages' profile tabs, and any other face): every
mistake of a change at once, a change kept whole or not at all, the notes of an import,
runs filtered by status, and what a run report says of its own completeness and of the
safety rule that stopped it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pbx_connector.errors import ConfigError, ConflictError, UsageError
from pbx_connector.service import App
from tests.helpers import PHONEBOOK_HEADER, phonebook_row, records, write_csv


@pytest.fixture
def app(engine: Engine) -> App:
    return App(engine)


@pytest.fixture
def pb_csv(tmp_path: Path) -> Path:
    rows = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(20)]
    return write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)


def test_check_names_every_wrong_field_and_saves_nothing(app: App, pb_csv: Path) -> None:
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    before = app.profiles.get("pb")
    errors = app.profiles.check(
        "pb",
        settings={"delimiter": "::", "max_delete": "lots", "mode": "sometimes"},
        variables={"notes": "{{ oops", "displayname": "", "email": "{{ email }}"},
        prefilter="{% if",
    )
    assert set(errors) == {"delimiter", "max_delete", "mode", "notes", "displayname", "pre-filter"}
    assert app.profiles.get("pb") == before
    assert app.profiles.check("pb", settings={"mode": "update"}, variables={"notes": "x"}) == {}


def test_check_sees_what_only_the_whole_change_breaks(app: App, pb_csv: Path) -> None:
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    # Each is fine alone; the key then names a variable this change empties.
    errors = app.profiles.check("pb", settings={"key": "email"}, variables={"email": ""})
    assert list(errors) == ["key"]


def test_check_takes_a_change_that_is_fine_only_as_a_whole(app: App) -> None:
    app.profiles.create(
        "pb", "csv-phonebook", settings={"url": "https://files.example.test/pb.csv"}
    )
    # From a URL to a share in one save: `use_share` alone, with the URL still set, is
    # refused (one place to read from), but this change empties the URL as well.
    switch = {"url": "", "use_share": "yes", "share": r"\\files\pbx", "path": r"test\pb.csv"}
    assert app.profiles.check("pb", settings=switch) == {}
    saved = app.profiles.save("pb", settings=switch)
    assert (saved.settings["use_share"], saved.settings["url"]) == ("yes", "")
    # Alone, it is named.
    assert list(app.profiles.check("pb", settings={"url": "https://x.example.test/a.csv"})) == [
        "use_share"
    ]


def test_save_keeps_all_of_a_change_or_none_of_it(app: App, pb_csv: Path) -> None:
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    before = app.profiles.get("pb")
    with pytest.raises(ConfigError):
        app.profiles.save("pb", settings={"mode": "update"}, variables={"notes": "{{ oops"})
    assert app.profiles.get("pb") == before
    saved = app.profiles.save(
        "pb",
        settings={"mode": "update", "max_delete": "3"},
        variables={"notes": "{{ organisation }}"},
        prefilter='phone != ""',
    )
    assert saved.mode == "update" and saved.settings["max_delete"] == "3"
    assert saved.variables["notes"] == "{{ organisation }}" and saved.prefilter == 'phone != ""'


def test_create_names_the_name_field(app: App, pb_csv: Path) -> None:
    with pytest.raises(UsageError) as bad:
        app.profiles.create("no spaces", "csv-phonebook", settings={"path": str(pb_csv)})
    assert bad.value.field == "name"
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    with pytest.raises(ConflictError) as taken:
        app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv)})
    assert taken.value.field == "name"


def test_an_import_says_which_secrets_to_set_again(app: App) -> None:
    app.profiles.create(
        "dir",
        "ldap-phonebook",
        settings={"uri": "ldap://127.0.0.1:1", "base_dn": "dc=x", "bind_password": "S3cret!"},
    )
    text = app.profiles.export("dir")
    assert "S3cret!" not in text
    created = app.profiles.import_with_notes(text, "copy")
    assert created.profile.name == "copy" and created.profile.secrets_set == []
    assert created.notes == ["the secret 'bind_password' is not in an export: set it again"]
    assert json.loads(app.profiles.export("copy"))["template"] == "ldap-phonebook"


def test_runs_filtered_by_status(app: App, engine: Engine, pb_csv: Path, tmp_path: Path) -> None:
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv), "max_delete": "2"})
    app.runs.run("pb")
    write_csv(pb_csv, PHONEBOOK_HEADER, [phonebook_row("Only", "+49 991 1")])
    aborted = app.runs.run("pb")
    queued = app.runs.request("pb", dry_run=True)
    assert [r.id for r in app.runs.list(status="aborted").items] == [aborted.id]
    assert app.runs.list("pb", status="ok").total == 1
    assert app.runs.list("other", status="ok").total == 0
    assert [r.id for r in app.runs.list(status="queued").items] == [queued.id]
    assert app.runs.list(status="running").total == 0
    with pytest.raises(UsageError):
        app.runs.list(status="happy")
    assert len(records(engine, "phonebook")) == 20


def test_an_aborted_report_names_its_safety_rule(app: App, pb_csv: Path) -> None:
    app.profiles.create("pb", "csv-phonebook", settings={"path": str(pb_csv), "max_delete": "2"})
    first = app.runs.run("pb")
    assert first.safety_rule is None and first.unlisted_changes == 0
    write_csv(pb_csv, PHONEBOOK_HEADER, [phonebook_row("Only", "+49 991 1")])
    aborted = app.runs.run("pb")
    assert aborted.status == "aborted" and aborted.safety_rule == "max_delete"
    deletes = [c for c in aborted.changes if c.action == "delete"]
    assert len(deletes) == 20 and aborted.unlisted_changes == 0
    write_csv(pb_csv, PHONEBOOK_HEADER, [])
    assert app.runs.run("pb").safety_rule == "no rows"
    app.profiles.save("pb", prefilter="false")
    write_csv(pb_csv, PHONEBOOK_HEADER, [phonebook_row("Only", "+49 991 1")])
    assert app.runs.run("pb").safety_rule == "pre-filter"


def test_a_report_counts_the_changes_it_does_not_list(app: App, tmp_path: Path) -> None:
    rows = [phonebook_row(f"Entry {n}", f"+49 991 {10000 + n}") for n in range(1005)]
    rows += [phonebook_row("", "+49 991 1"), phonebook_row("", "+49 991 2")]
    path = write_csv(tmp_path / "big.csv", PHONEBOOK_HEADER, rows)
    app.profiles.create("big", "csv-phonebook", settings={"path": str(path)})
    report = app.runs.run("big", dry_run=True)
    assert report.counts.created == 1005 and report.counts.invalid == 2
    assert report.unlisted_changes == 1005 - len(report.changes) > 0
    assert report.unlisted_errors == 0
