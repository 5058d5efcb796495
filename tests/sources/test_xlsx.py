"""The xlsx format: workbooks made with openpyxl here, read as a person sees them, through
the file source and through a real sync."""

from __future__ import annotations

import datetime
import io
import re
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from pbx_connector.errors import ConfigError, SourceError
from pbx_connector.service import App
from pbx_connector.sources.base import SourceRow
from pbx_connector.sources.files import check_file_settings, open_file_source
from pbx_connector.sources.formats import open_table
from pbx_connector.sources.xlsx import cell_ref, cell_text, check_settings
from pbx_connector.store.db import private_dir
from tests.helpers import PHONEBOOK_HEADER, Cli, make_profile, records


def workbook(path: Path, *sheets: tuple[str, list[list[Any]]]) -> Path:
    wb = openpyxl.Workbook()
    assert wb.active is not None
    wb.remove(wb.active)
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def with_cached_values(path: Path, sheet_xml: str, cached: dict[str, tuple[str, str]]) -> None:
    """Give formula cells the value a spreadsheet program saves with them (openpyxl
    writes formulas without one): cell -> (type, value), type `n` or `str`."""
    with zipfile.ZipFile(path) as zin:
        items = {i.filename: zin.read(i.filename) for i in zin.infolist()}
    xml = items[sheet_xml].decode()
    for ref, (kind, value) in cached.items():
        pattern = re.compile(rf'<c r="{ref}"([^>]*)><f>(.*?)</f><v\s*/>(</c>)')
        xml, n = pattern.subn(rf'<c r="{ref}"\1 t="{kind}"><f>\2</f><v>{value}</v>\3', xml)
        assert n == 1, ref
    items[sheet_xml] = xml.encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in items.items():
            zout.writestr(name, data)


def read(path: Path, **settings: str) -> list[SourceRow]:
    source = open_file_source({"path": str(path), "format": "xlsx", **settings}, {})
    return list(source.rows())


def data(path: Path, **settings: str) -> list[dict[str, Any]]:
    return [r.data for r in read(path, **settings)]


# --- cells as a person sees them ----------------------------------------------------------


def test_cells_are_the_text_a_person_sees(tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "People"
    ws.append(["name", "phone", "big", "count", "ratio", "noise", "date", "when", "vip", "time"])
    ws.append(
        [
            "Max Muster ",
            4999112345,
            49991123456789,
            42,
            1.5,
            0.1 + 0.2,
            datetime.date(2024, 5, 1),
            datetime.datetime(2024, 5, 1, 10, 0),
            True,
            datetime.time(10, 30),
        ]
    )
    ws["G2"].number_format = "yyyy-mm-dd"
    ws.append(["Eva", "+49 991 12345", 1e20, -3, 0.000123, 1 / 3, None, None, False, None])
    wb.save(path)
    assert data(path) == [
        {
            "name": "Max Muster ",
            "phone": "4999112345",
            "big": "49991123456789",
            "count": "42",
            "ratio": "1.5",
            "noise": "0.3",
            "date": "2024-05-01",
            "when": "2024-05-01T10:00:00",
            "vip": "TRUE",
            "time": "10:30:00",
        },
        {
            "name": "Eva",
            "phone": "+49 991 12345",
            "big": "100000000000000000000",
            "count": "-3",
            "ratio": "0.000123",
            "noise": "0.333333333333333",
            "date": "",
            "when": "",
            "vip": "FALSE",
            "time": "",
        },
    ]


def test_formulas_give_their_cached_value(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "f.xlsx",
        ("Sheet", [["name", "phone", "label"], ["Max", 4999112345, '=A2&" (HQ)"']]),
    )
    wb = openpyxl.load_workbook(path)
    wb["Sheet"]["B2"] = "=4999112300+45"
    wb.save(path)
    with_cached_values(
        path,
        "xl/worksheets/sheet1.xml",
        {"B2": ("n", "4999112345"), "C2": ("str", "Max (HQ)")},
    )
    assert data(path) == [{"name": "Max", "phone": "4999112345", "label": "Max (HQ)"}]


def test_a_formula_without_a_cached_value_is_empty(tmp_path: Path) -> None:
    path = workbook(tmp_path / "f.xlsx", ("S", [["a", "b"], ["x", "=1+1"]]))
    assert data(path) == [{"a": "x", "b": ""}]


def test_merged_and_empty_cells_are_empty_and_empty_rows_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "m.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "S"
    ws.append(["displayname", "phone", "organisation"])
    ws.append(["Max", "+49 991 1", "pascom"])
    ws.append([])
    ws.append([None, None, None])
    ws.append(["Eva", None, "pascom"])
    ws.merge_cells("A6:B6")
    ws["A6"] = "Merged"
    ws["C6"] = "x"
    wb.save(path)
    rows = read(path)
    assert [r.line for r in rows] == [2, 5, 6]
    assert [r.data for r in rows] == [
        {"displayname": "Max", "phone": "+49 991 1", "organisation": "pascom"},
        {"displayname": "Eva", "phone": "", "organisation": "pascom"},
        {"displayname": "Merged", "phone": "", "organisation": "x"},
    ]
    assert rows[0].ref == "S, row 2"


def test_sheets_by_name_and_by_position(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "two.xlsx",
        ("First", [["a"], ["one"]]),
        ("Second Sheet", [["b"], ["two"]]),
    )
    assert data(path) == [{"a": "one"}]
    assert data(path, sheet="1") == [{"a": "one"}]
    assert data(path, sheet="2") == [{"b": "two"}]
    assert data(path, sheet="Second Sheet") == [{"b": "two"}]
    assert data(path, sheet="second sheet") == [{"b": "two"}]


def test_header_row_3_and_columns_that_start_later(tmp_path: Path) -> None:
    path = tmp_path / "h.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Data"
    ws["A1"] = "Phone list, exported 2024-05-01"
    ws["B3"], ws["C3"] = "displayname", "phone"
    ws["B4"], ws["C4"] = "Max", 4999112345
    ws["B6"], ws["C6"] = "Eva", "+49 991 2"
    wb.save(path)
    rows = read(path, header_row="3")
    assert [(r.line, r.data) for r in rows] == [
        (4, {"displayname": "Max", "phone": "4999112345"}),
        (6, {"displayname": "Eva", "phone": "+49 991 2"}),
    ]


def test_a_value_outside_the_header_is_one_invalid_row(tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "r.xlsx",
        ("People", [["name", "phone"], ["Max", "1"], ["Eva", "2", "extra"], ["Ina", "3"]]),
    )
    rows = read(path)
    assert [r.data.get("name") for r in rows] == ["Max", None, "Ina"]
    assert rows[1].line == 3
    assert rows[1].error is not None and "People!C3 has a value" in rows[1].error


def test_fields_are_the_header(tmp_path: Path) -> None:
    path = workbook(tmp_path / "f.xlsx", ("S", [[" name ", "phone", 2024]]))
    source = open_file_source({"path": str(path), "format": "xlsx"}, {})
    assert source.fields() == ["name", "phone", "2024"]
    assert list(source.rows()) == []


# --- errors name the cell -------------------------------------------------------------------


def _error(path: Path, **settings: str) -> SourceError:
    with pytest.raises(SourceError) as info:
        read(path, **settings)
    return info.value


def test_an_empty_header_cell_is_named(tmp_path: Path) -> None:
    path = workbook(tmp_path / "e.xlsx", ("People", [["name", None, "phone"], ["a", "b", "c"]]))
    error = _error(path)
    assert "People!B1 is empty" in str(error)
    assert str(path) in str(error)


def test_a_duplicated_header_cell_is_named(tmp_path: Path) -> None:
    path = workbook(tmp_path / "d.xlsx", ("My List", [[], [], ["phone", "name", "phone"]]))
    error = _error(path, header_row="3")
    assert "'My List'!A3 and 'My List'!C3 both say 'phone'" in str(error)


def test_an_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    path = workbook(tmp_path / "s.xlsx", ("People", [["a"]]), ("Rooms", [["b"]]))
    error = _error(path, sheet="Staff")
    assert "no sheet 'Staff'" in error.message and "People, Rooms" in error.message
    assert error.field == "sheet"
    error = _error(path, sheet="3")
    assert "no sheet 3: the workbook has 2 sheets (People, Rooms)" in error.message


def test_a_missing_or_empty_header_row(tmp_path: Path) -> None:
    path = workbook(tmp_path / "h.xlsx", ("S", [["a"], ["b"], [], ["c"]]))
    assert "has no row 9 (header_row): it ends at row 4" in _error(path, header_row="9").message
    assert "header row 3 of the sheet 'S' is empty" in _error(path, header_row="3").message


def test_a_file_that_is_not_an_xlsx(tmp_path: Path) -> None:
    path = tmp_path / "phonebook.xlsx"
    path.write_text("displayname,phone\nMax,+49 991 1\n")
    error = _error(path)
    assert "not an xlsx workbook" in error.message and error.source == str(path)
    path.write_bytes(b"PK\x03\x04 damaged")
    assert "not an xlsx workbook" in _error(path).message


def test_a_missing_file(tmp_path: Path) -> None:
    assert "cannot open the file" in _error(tmp_path / "nope.xlsx").message


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("sheet", "0"),
        ("sheet", "a/b"),
        ("sheet", "x" * 32),
        ("header_row", "0"),
        ("header_row", "-1"),
        ("header_row", "one"),
        ("header_row", "2000000"),
    ],
)
def test_check_settings_names_the_setting(setting: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        check_settings({setting: value})
    assert info.value.field == setting
    with pytest.raises(ConfigError):
        check_file_settings({"path": "/x.xlsx", "format": "xlsx", setting: value})


def test_check_settings_takes_names_positions_and_defaults() -> None:
    check_settings({})
    check_settings({"sheet": "Phone list 2024", "header_row": "3"})
    check_settings({"sheet": "2", "header_row": ""})


# --- streams that cannot seek ----------------------------------------------------------------


class _Pipe(io.RawIOBase):
    """A stream that reads but cannot seek and has no file descriptor (a share, a URL)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        chunk = self._data.read(min(len(buffer), 1000))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_a_stream_that_cannot_seek_is_spooled_privately_and_removed(tmp_path: Path) -> None:
    path = workbook(tmp_path / "p.xlsx", ("S", [["a", "b"], ["x", 1], ["y", 2]]))
    spool = private_dir("spool")
    with open_table(_Pipe(path.read_bytes()), {"format": "xlsx"}, "https://x/p.xlsx") as table:
        assert table.fields == ["a", "b"]
        assert [p.stat().st_mode & 0o777 for p in spool.glob("xlsx-*")] == [0o600]
        assert [r.data for r in table] == [{"a": "x", "b": "1"}, {"a": "y", "b": "2"}]
    assert list(spool.glob("xlsx-*")) == []
    assert spool.stat().st_mode & 0o777 == 0o700
    with (
        pytest.raises(SourceError),
        open_table(_Pipe(b"not a workbook"), {"format": "xlsx"}, "https://x/p.xlsx"),
    ):
        pass
    assert list(spool.glob("xlsx-*")) == []


# --- a real sync --------------------------------------------------------------------------


def test_a_phonebook_sync_from_an_xlsx_sheet(engine: Engine, tmp_path: Path) -> None:
    path = workbook(
        tmp_path / "phonebook.xlsx",
        ("Notes", [["nothing here"]]),
        (
            "Phonebook",
            [
                ["Company phonebook"],
                [],
                PHONEBOOK_HEADER,
                ["Max Muster", "+4999112345", "Max", "Muster", "pascom"],
                [],
                ["Eva Example", 4999112399, "Eva", "Example", "pascom"],
                ["Bad", "+49 991 3", "", "", "", "", "", "", "", "extra"],
            ],
        ),
    )
    make_profile(
        engine,
        "pb",
        "csv-phonebook",
        path,
        format="xlsx",
        sheet="Phonebook",
        header_row="3",
        region="DE",
    )
    app = App(engine)
    report = app.runs.run("pb")
    assert report.status == "ok", report.message
    assert report.counts.created == 2 and report.counts.invalid == 1
    assert report.errors[0].line == 7 and report.errors[0].ref == "Phonebook, row 7"
    assert "Phonebook!J7 has a value" in report.errors[0].message
    stored = {r["displayname"]: r for r in records(engine, "phonebook")}
    assert set(stored) == {"Max Muster", "Eva Example"}
    assert stored["Eva Example"]["phone"] == "4999112399"
    assert stored["Max Muster"]["organisation"] == "pascom"
    # Unchanged on a second run.
    again = app.runs.run("pb")
    assert again.counts.created == 0 and again.counts.unchanged == 2


def test_a_run_on_a_broken_workbook_fails_and_changes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    path = workbook(tmp_path / "pb.xlsx", ("S", [PHONEBOOK_HEADER, ["Max", "+49 991 1"]]))
    make_profile(engine, "pb", "csv-phonebook", path, format="xlsx")
    app = App(engine)
    assert app.runs.run("pb").counts.created == 1
    workbook(path, ("S", [["displayname", "phone", "phone"], ["Max", "+49 991 1", "x"]]))
    failed = app.runs.run("pb")
    assert failed.status == "failed"
    assert "S!B1 and S!C1 both say 'phone'" in failed.message
    assert [r["displayname"] for r in records(engine, "phonebook")] == ["Max"]


def _people(path: Path, header: list[str], rows: list[list[Any]]) -> Path:
    return workbook(path, ("Sheet1", [header, *rows]))


def test_a_row_error_names_the_cell_of_a_field_read_from_one_column(
    engine: Engine, tmp_path: Path
) -> None:
    # Column C is the phone, row 5 has a number that is none; F the e-mail, AA the fax
    # (after Z).
    filler = [f"x{n}" for n in range(20)]
    header = ["displayname", "organisation", "phone", "givenname", "surname", "email"]
    header += [*filler, "fax"]
    assert len(header) == 27

    def row(name: str, phone: str, email: str = "", fax: str = "") -> list[str]:
        return [name, "pascom", phone, "", "", email, *[""] * len(filler), fax]

    path = _people(
        tmp_path / "people.xlsx",
        header,
        [
            row("Max", "+49 991 1"),
            row("Eva", "+49 991 2"),
            row("Otto", "+49 991 3"),
            row("Bad Phone", "call me"),
            row("Bad Mail", "+49 991 6", email="max@"),
            row("Bad Fax", "+49 991 7", fax="call me"),
        ],
    )
    make_profile(engine, "pb", "csv-phonebook", path, format="xlsx", region="DE")
    report = App(engine).runs.run("pb")
    assert report.status == "ok", report.message
    warnings = {(w.line, w.field): w.ref for w in report.warnings}
    assert warnings[(5, "phone")] == "Sheet1!C5"
    assert warnings[(7, "fax")] == "Sheet1!AA7"
    (error,) = report.errors
    assert (error.line, error.field, error.ref) == (6, "email", "Sheet1!F6")


def test_a_field_computed_from_several_columns_names_the_row(
    engine: Engine, tmp_path: Path
) -> None:
    path = _people(
        tmp_path / "people.xlsx",
        ["first", "last", "number"],
        [["Max", "Muster", "+49 991 1"], ["", "", "+49 991 2"], ["Eva", "Example", "call me"]],
    )
    make_profile(
        engine,
        "pb",
        "csv-phonebook",
        path,
        format="xlsx",
        region="DE",
        variables={"displayname": "{{ first }} {{ last }}", "phone": "{{ number | trim }}"},
    )
    report = App(engine).runs.run("pb")
    assert report.status == "ok", report.message
    (error,) = report.errors
    assert (error.line, error.field, error.ref) == (3, "displayname", "Sheet1, row 3")
    (warning,) = report.warnings
    assert (warning.line, warning.field, warning.ref) == (4, "phone", "Sheet1!C4")


def test_the_cli_names_the_cell(tmp_path: Path) -> None:
    path = _people(
        tmp_path / "people.xlsx",
        ["displayname", "organisation", "phone", "email"],
        [
            ["Max", "pascom", "+49 991 1", ""],
            ["Eva", "pascom", "+49 991 2", ""],
            ["Otto", "pascom", "+49 991 3", ""],
            ["Bad Phone", "pascom", "call me", ""],
            ["Bad Mail", "pascom", "+49 991 6", "max@"],
        ],
    )
    cli = Cli(tmp_path / "cli.db")
    cli(
        "profile",
        "create",
        "pb",
        "--template",
        "csv-phonebook",
        *("--set", f"path={path}", "--set", "format=xlsx", "--set", "region=DE"),
    )
    out = cli("sync", "pb").stderr
    assert "warning: Sheet1!C5, field 'phone': 'call me' kept as given" in out
    assert "error: Sheet1!D6, field 'email': " in out
    run_id = str(cli.json("runs", "pb")[0]["id"])
    shown = cli("run", "show", run_id).stderr
    assert "warning: Sheet1!C5, field 'phone'" in shown
    assert "error: Sheet1!D6, field 'email'" in shown


# --- the cell-to-text function ---------------------------------------------------------------


@given(st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1))
def test_whole_numbers_stored_as_floats_read_as_integers(n: int) -> None:
    assert cell_text(float(n)) == str(n)
    assert cell_text(n) == str(n)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_numbers_are_plain_digits_at_most_15_significant(value: float) -> None:
    text = cell_text(value)
    assert "e" not in text and not text.endswith(".0")
    if "E" not in text:
        number = Decimal(text)
        assert number == Decimal(f"{value:.15g}")
        assert len(number.as_tuple().digits) <= 15 or number == number.to_integral_value()
    else:
        assert abs(value) >= 1e21 or abs(value) < 1e-7


@given(st.datetimes(min_value=datetime.datetime(1900, 1, 1)))
def test_dates_and_times_are_iso(value: datetime.datetime) -> None:
    text = cell_text(value)
    if value.time() == datetime.time(0):
        assert text == value.date().isoformat()
    else:
        assert datetime.datetime.fromisoformat(text) == value.replace(
            microsecond=value.microsecond // 1000 * 1000
        )
    assert cell_text(value.date()) == value.date().isoformat()


@given(st.text())
def test_text_is_kept_exactly(value: str) -> None:
    assert cell_text(value) == value


def test_other_values() -> None:
    assert cell_text(None) == ""
    assert (cell_text(True), cell_text(False)) == ("TRUE", "FALSE")
    assert cell_text(datetime.time(10, 30)) == "10:30:00"
    assert cell_text(datetime.timedelta(hours=30, minutes=5)) == "30:05:00"
    assert cell_text(4.999112345678901e16) == "49991123456789000"
    assert cell_text(1e25) == "1E+25"


def test_cell_refs() -> None:
    assert cell_ref("People", 1, 7) == "People!B7"
    assert cell_ref("People", 26, 1) == "People!AA1"
    assert cell_ref("My List", 0, 2) == "'My List'!A2"
    assert cell_ref("O'Neil", 0, 2) == "'O''Neil'!A2"
