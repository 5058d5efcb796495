"""`profile upload` as a user types it, against a real SQLite file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import openpyxl
import pytest

from tests.helpers import PHONEBOOK_HEADER, Cli, write_csv


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    c = Cli(tmp_path / "cli.db")
    c("profile", "create", "pb", "--template", "csv-phonebook", "--set", "upload=yes")
    return c


def test_upload_a_csv_file_and_show_it(cli: Cli, tmp_path: Path) -> None:
    assert "Nothing has been uploaded to profile 'pb' yet." in cli("profile", "upload", "pb").stdout
    path = write_csv(
        tmp_path / "phonebook.csv", PHONEBOOK_HEADER, [["Max", "+49 991 1"] + [""] * 7]
    )
    out = cli("profile", "upload", "pb", str(path)).stdout
    checksum = hashlib.sha256(path.read_bytes()).hexdigest()
    assert "Uploaded 'phonebook.csv' to profile 'pb'; it reads it from now on." in out
    assert f"sha256:    {checksum}" in out and "format:    csv" in out
    shown = cli.json("profile", "upload", "pb")
    assert shown["name"] == "phonebook.csv" and shown["sha256"] == checksum
    assert shown["size"] == path.stat().st_size
    out = cli("sync", "pb").stdout
    assert "Created phonebook entry 'Max' (line 2)" in out and "1 created" in out


def test_upload_an_xlsx_file_from_standard_input(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "book.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(PHONEBOOK_HEADER)
    ws.append(["Max", 4999112345])
    wb.save(path)
    result = cli.runner.invoke(
        __import__("pbx_connector.cli", fromlist=["app"]).app,
        ["--db", str(cli.db), "profile", "upload", "pb", "-", "--name", "book.xlsx", "--json"],
        input=path.read_bytes(),
    )
    assert result.exit_code == 0, result.stderr
    assert '"format": "xlsx"' in result.stdout
    out = cli("sync", "pb", "--dry-run").stdout
    assert "Would create" in out


def test_upload_errors_are_one_line(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "book.xlsx"
    bad.write_text("displayname,phone\n")
    result = cli("profile", "upload", "pb", str(bad), code=2)
    assert result.stderr.startswith('error: field "file": the file cannot be read')
    assert "not an xlsx workbook" in result.stderr
    missing = cli("profile", "upload", "pb", str(tmp_path / "nope.csv"), code=2)
    assert "nope.csv: No such file or directory" in missing.stderr
    other = tmp_path / "hosts.csv"
    other.write_text("host\nexample\n")
    wrong = cli("profile", "upload", "pb", str(other), code=2).stderr
    assert "the file does not fit the profile's variables: displayname uses the column" in wrong
    assert "which 'hosts.csv' does not have" in wrong
    assert "no profile named 'x'" in cli("profile", "upload", "x", str(bad), code=2).stderr
