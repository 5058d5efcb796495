"""`import` and `import-template` as a user types them, against a real SQLite file."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from tests.helpers import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "cli.db")


def test_fill_in_the_template_and_import_it(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "phonebook.xlsx"
    out = cli("import-template", "--target", "phonebook", str(path)).stdout
    assert f"Wrote the phonebook import template to {path}." in out
    wb = openpyxl.load_workbook(path)
    ws = wb.active
    assert ws is not None and ws.title == "Phonebook"
    ws.append(["Eva Example", "+49 991 12399"])
    wb.save(path)

    dry = cli("import", str(path), "--target", "phonebook", "--dry-run").stdout
    assert "2 rows read: 2 to create, 0 invalid, 0 conflicts" in dry
    assert "dry run: would import 2 phonebook entries" in dry
    assert "Eva Example" not in cli("phonebook", "list").stdout

    done = cli("import", str(path), "--target", "phonebook").stdout
    assert "imported 2 phonebook entries" in done
    listed = cli("phonebook", "list").stdout
    assert "Eva Example" in listed and "Max Muster - pascom [30000]" in listed


def test_an_invalid_row_is_named_and_nothing_is_imported(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "users.csv"
    cli("import-template", "--target", "users", str(path))
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("eva,Eva,,,not-an-address,30001,,,,,,\r\n")
    result = cli("import", str(path), "--target", "users", code=3)
    assert "error: line 3, field 'email':" in result.stdout
    assert "nothing was imported: 1 row cannot be imported" in result.stdout
    assert "max.muster" not in cli("users", "list").stdout
    as_json = json.loads(cli("import", str(path), "-t", "users", "--json", code=3).stdout)
    assert as_json["applied"] is False and as_json["errors"][0]["where"] == "line 3"


def test_import_errors_are_one_line(cli: Cli, tmp_path: Path) -> None:
    missing = cli("import", str(tmp_path / "nope.xlsx"), "--target", "users", code=2)
    assert "nope.xlsx: No such file or directory" in missing.stderr
    other = tmp_path / "notes.txt"
    other.write_text("name\nMax\n")
    error = cli("import", str(other), "--target", "phonebook", code=2).stderr
    assert error.startswith("error: field \"file\": the file has no column 'displayname'")
    bad = cli("import-template", "--target", "contacts", str(tmp_path / "x.xlsx"), code=2)
    assert "target must be one of users, phonebook, speeddials" in bad.stderr
