"""One-off imports through the application core: the same rules as a sync, all rows or
none, records made as if by hand, and the template file of each target."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, select

from pbx_connector.errors import UsageError
from pbx_connector.service import App
from pbx_connector.store.records import table_for
from tests.helpers import PHONEBOOK_HEADER, make_profile, phonebook_row, records, write_csv


@pytest.fixture
def app(engine: Engine) -> App:
    return App(engine)


def book(*rows: list[Any], title: str = "Phonebook") -> io.BytesIO:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    out.seek(0)
    return out


def test_an_xlsx_phonebook_is_imported_as_if_made_by_hand(app: App, engine: Engine) -> None:
    data = book(
        ["displayname", "phone", "organisation", "remarks"],
        ["Max Muster", 4999112345, "pascom", "x"],
        [],
        ["Eva Example", "+49 991 12399", "pascom", ""],
    )
    result = app.imports.run(data, "phonebook.xlsx", "phonebook")
    assert result.applied and result.rows == 2 and result.counts.created == 2
    assert result.message == "imported 2 phonebook entries"
    assert result.ignored_columns == ["remarks"] and result.format == "xlsx"
    stored = {r["displayname"]: r for r in records(engine, "phonebook")}
    assert stored["Max Muster"]["phone"] == "4999112345"
    table = table_for("phonebook")
    with engine.connect() as conn:
        origins = conn.execute(select(table.c.origin_profile_id, table.c.origin_key)).all()
    assert [tuple(o) for o in origins] == [(None, None), (None, None)]
    assert all(r.origin is None for r in app.records.list("phonebook").items)


def test_a_dry_run_writes_nothing(app: App, engine: Engine) -> None:
    data = book(["displayname", "phone"], ["Max", "+49 991 1"])
    result = app.imports.run(data, "pb.xlsx", "phonebook", dry_run=True)
    assert not result.applied and result.dry_run and result.counts.created == 1
    assert result.message == "dry run: would import 1 phonebook entry"
    assert records(engine, "phonebook") == []


def test_an_invalid_row_refuses_the_whole_import_naming_the_cell(app: App, engine: Engine) -> None:
    data = book(
        ["username", "displayname", "email", "extension"],
        ["max", "Max", "max@example.com", "100"],
        ["eva", "Eva", "not-an-address", "101"],
        ["ina", "Ina", "ina@example.com", "100"],
        title="Staff",
    )
    result = app.imports.run(data, "users.xlsx", "users")
    assert not result.applied and result.counts.created == 1
    assert result.message.startswith("nothing was imported: 2 rows cannot be imported")
    where = {(e.where, e.field) for e in result.errors}
    assert ("Staff!C3", "email") in where
    assert ("Staff!D4", "extension") in where
    assert [r["username"] for r in records(engine, "users")] == ["admin"]


def test_csv_files_are_read_with_their_encoding_and_delimiter_detected(
    app: App, engine: Engine, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "Kurzwahl.csv",
        ["code", "number", "displayname"],
        [["10", "+49 991 1", "Müller"], ["x1", "+49 991 2", "Bad"]],
        encoding="cp1252",
        delimiter=";",
    )
    with open(path, "rb") as fh:
        result = app.imports.run(fh, path.name, "speeddials", dry_run=True)
    assert result.format == "csv" and result.counts.created == 1
    assert [(e.where, e.field) for e in result.errors] == [("line 3", "code")]
    with open(path, "rb") as fh:
        assert not app.imports.run(fh, path.name, "speeddials").applied
    assert records(engine, "speeddials") == []


def test_records_that_exist_conflict_and_profiles_never_delete_imported_ones(
    app: App, engine: Engine, tmp_path: Path
) -> None:
    csv_path = write_csv(
        tmp_path / "pb.csv", PHONEBOOK_HEADER, [phonebook_row("Synced", "+49 991 5")]
    )
    make_profile(engine, "pb", "csv-phonebook", csv_path)
    app.runs.run("pb")
    result = app.imports.run(
        book(["displayname", "phone"], ["Synced", "+49 991 5"]), "a.xlsx", "phonebook"
    )
    assert not result.applied and result.errors[0].kind == "conflict"
    assert "imported by profile 'pb'" in result.errors[0].message
    assert app.imports.run(
        book(["displayname", "phone"], ["Hand", "+49 991 6"]), "b.xlsx", "phonebook"
    ).applied
    write_csv(csv_path, PHONEBOOK_HEADER, [phonebook_row("Other", "+49 991 7")])
    assert app.runs.run("pb", force=True).counts.deleted == 1
    assert {r["displayname"] for r in records(engine, "phonebook")} == {"Hand", "Other"}


def test_the_admin_user_cannot_be_imported_over(app: App) -> None:
    result = app.imports.run(book(["username"], ["admin"], title="Users"), "u.xlsx", "users")
    assert not result.applied and "built-in admin" in result.errors[0].message


@pytest.mark.parametrize(
    ("content", "filename", "target", "message"),
    [
        (b"displayname\nMax\n", "pb.pdf", "phonebook", "import an .xlsx or a .csv file"),
        (b"displayname\nMax\n", "pb.csv", "contacts", "target must be one of"),
        (b"name,phone\nMax,1\n", "pb.csv", "phonebook", "no column 'displayname'"),
        (b"not a workbook", "pb.xlsx", "phonebook", "not an xlsx workbook"),
    ],
)
def test_files_that_cannot_be_imported(
    app: App, content: bytes, filename: str, target: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        app.imports.run(io.BytesIO(content), filename, target)


def test_a_header_cell_error_names_the_cell(app: App) -> None:
    data = book(["displayname", None, "phone"], ["Max", "", "1"])
    with pytest.raises(UsageError) as info:
        app.imports.run(data, "pb.xlsx", "phonebook")
    assert "Phonebook!B1 is empty" in info.value.message and info.value.field == "file"


def test_an_empty_file_imports_nothing(app: App) -> None:
    result = app.imports.run(book(["displayname", "phone"]), "pb.xlsx", "phonebook")
    assert not result.applied and result.message == "the file has no rows: nothing to import"


@pytest.mark.parametrize("target", ["users", "phonebook", "speeddials"])
@pytest.mark.parametrize("fmt", ["xlsx", "csv"])
def test_each_template_file_imports_its_example_row(
    app: App, engine: Engine, target: str, fmt: str
) -> None:
    template = app.imports.template(target, fmt)
    assert template.filename == f"{target}.{fmt}"
    result = app.imports.run(io.BytesIO(template.content), template.filename, target)
    assert result.applied and result.counts.created == 1, result
    assert not result.ignored_columns and not result.warnings
    if fmt == "xlsx":
        wb = openpyxl.load_workbook(io.BytesIO(template.content))
        header = [c.value for c in next(wb.active.iter_rows())]  # type: ignore[union-attr]
        assert header == app.imports.template_columns(target)
