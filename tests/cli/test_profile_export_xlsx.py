"""An xlsx profile (`format=xlsx` with `sheet` and `header_row`) exported with `profile
export` and imported with `profile import` into a fresh store reads the same rows."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pytest

from pbx_connector.store.db import ENV_HOME
from tests.helpers import PHONEBOOK_HEADER, Cli

XLSX_SETTINGS = {"format": "xlsx", "sheet": "Staff", "header_row": "3"}


def _workbook(path: Path) -> Path:
    """A workbook whose phonebook is the second sheet, below two rows of notes."""
    wb = openpyxl.Workbook()
    notes = wb.active
    assert notes is not None
    notes.title = "Notes"
    notes.append(["displayname", "phone"])
    notes.append(["Not Me", "+49 991 99999"])
    staff = wb.create_sheet("Staff")
    staff.append(["Phonebook of the office"])
    staff.append([])
    staff.append(PHONEBOOK_HEADER)
    staff.append(["Max Muster", "+49 991 12345"])
    staff.append(["Eva Example", "+49 991 12399"])
    wb.save(path)
    return path


def _would_create(cli: Cli, name: str) -> list[str]:
    out = cli("sync", name, "--dry-run").stdout
    return sorted(line for line in out.splitlines() if line.startswith("Would create"))


def test_xlsx_settings_survive_export_and_import_into_a_fresh_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = _workbook(tmp_path / "book.xlsx")
    first = Cli(tmp_path / "first.db")
    sets = [f"--set={k}={v}" for k, v in {"path": str(book), **XLSX_SETTINGS}.items()]
    first("profile", "create", "office", "--template", "csv-phonebook", *sets)
    expected = [
        "Would create phonebook entry 'Eva Example' (Staff, row 5)",
        "Would create phonebook entry 'Max Muster' (Staff, row 4)",
    ]
    assert _would_create(first, "office") == expected
    export = tmp_path / "office.json"
    first("profile", "export", "office", "-o", str(export))
    exported = json.loads(export.read_text())["settings"]
    assert {k: exported[k] for k in XLSX_SETTINGS} == XLSX_SETTINGS

    # Another instance: its own data directory and an empty store.
    monkeypatch.setenv(ENV_HOME, str(tmp_path / "fresh-home"))
    fresh = Cli(tmp_path / "fresh.db")
    assert fresh.json("profile", "list") == []
    fresh("profile", "import", str(export))
    a = first.json("profile", "show", "office")
    b = fresh.json("profile", "show", "office")
    assert {k: b["settings"][k] for k in XLSX_SETTINGS} == XLSX_SETTINGS
    for k in ("template", "mode", "settings", "variables", "prefilter"):
        assert a[k] == b[k], k
    assert _would_create(fresh, "office") == expected
    assert fresh.json("sync", "office")["counts"]["created"] == 2
    assert sorted(e["displayname"] for e in fresh.json("phonebook", "list")) == [
        "Eva Example",
        "Max Muster",
    ]
