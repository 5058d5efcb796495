"""Uploaded files through the application core: kept privately, replaced atomically,
described, and read by a run."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine

from pbx_connector.errors import ConfigError, NotFoundError, UsageError
from pbx_connector.service import App
from pbx_connector.service.uploads import MAX_UPLOAD_BYTES
from pbx_connector.store.db import data_dir
from tests.helpers import PHONEBOOK_HEADER, records, write_csv

CSV = b"displayname,phone\nMax Muster,+49 991 12345\nEva Example,+49 991 12399\n"


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


@pytest.fixture
def app(engine: Engine) -> App:
    core = App(engine)
    core.profiles.create("pb", "csv-phonebook", "mirror", {"upload": "yes"})
    return core


def test_a_profile_made_for_an_upload_says_none_was_made_yet(app: App) -> None:
    assert app.uploads.info("pb") is None
    report = app.runs.run("pb", dry_run=True)
    assert report.status == "failed"
    assert "no file has been uploaded to this profile yet" in report.message


def test_an_upload_is_kept_privately_described_and_read_by_a_run(app: App, engine: Engine) -> None:
    info = app.uploads.upload("pb", io.BytesIO(CSV), "C:\\Users\\max\\phonebook.csv")
    assert info.name == "phonebook.csv" and info.size == len(CSV)
    assert info.sha256 == hashlib.sha256(CSV).hexdigest() and info.format == "csv"
    assert app.uploads.info("pb") == info.model_copy(update={"notes": []})
    assert "variable 'givenname' left empty: the source has no column 'givenname'" in info.notes
    profile = app.profiles.get("pb")
    kept = Path(profile.settings["path"])
    directory = data_dir() / "uploads" / str(profile.id)
    assert kept.parent == directory and kept.read_bytes() == CSV
    assert directory.stat().st_mode & 0o777 == 0o700
    assert (data_dir() / "uploads").stat().st_mode & 0o777 == 0o700
    assert profile.settings["upload"] == "yes"
    report = app.runs.run("pb")
    assert report.status == "ok" and report.counts.created == 2
    assert {r["displayname"] for r in records(engine, "phonebook")} == {
        "Max Muster",
        "Eva Example",
    }


def test_a_new_upload_replaces_the_file_and_may_change_the_format(app: App, engine: Engine) -> None:
    app.uploads.upload("pb", io.BytesIO(CSV), "phonebook.csv")
    app.runs.run("pb")
    book = xlsx_bytes([PHONEBOOK_HEADER, ["Max Muster", 4999112345]])
    info = app.uploads.upload("pb", io.BytesIO(book), "phonebook.xlsx")
    assert info.format == "xlsx" and info.size == len(book)
    profile = app.profiles.get("pb")
    directory = Path(profile.settings["path"]).parent
    assert [p.name for p in directory.iterdir()] == [f"{info.sha256}.xlsx"]
    assert profile.settings["format"] == "xlsx"
    report = app.runs.run("pb", force=True)
    assert report.status == "ok" and (report.counts.created, report.counts.deleted) == (1, 2)
    assert [r["phone"] for r in records(engine, "phonebook")] == ["4999112345"]


def test_a_file_that_cannot_be_read_changes_nothing(app: App) -> None:
    first = app.uploads.upload("pb", io.BytesIO(CSV), "phonebook.csv")
    before = app.profiles.get("pb")
    with pytest.raises(UsageError) as info:
        app.uploads.upload("pb", io.BytesIO(b"not a workbook"), "phonebook.xlsx")
    assert info.value.field == "file" and "not an xlsx workbook" in info.value.message
    with pytest.raises(UsageError, match="empty"):
        app.uploads.upload("pb", io.BytesIO(b""), "phonebook.csv")
    assert app.profiles.get("pb").settings == before.settings
    assert app.uploads.info("pb") == first.model_copy(update={"notes": []})
    directory = Path(before.settings["path"]).parent
    assert [p.name for p in directory.iterdir()] == [f"{first.sha256}.csv"]


def test_the_size_limit(app: App) -> None:
    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
            buffer[:] = b"x" * len(buffer)
            return len(buffer)

    with pytest.raises(UsageError, match=f"larger than {MAX_UPLOAD_BYTES // 2**20} MiB"):
        app.uploads.upload("pb", io.BufferedReader(Endless()), "big.csv")
    assert app.uploads.info("pb") is None
    directory = data_dir() / "uploads" / str(app.profiles.get("pb").id)
    assert list(directory.iterdir()) == []


def test_an_upload_to_a_directory_profile_or_a_missing_profile(app: App) -> None:
    app.profiles.create(
        "ad",
        "ldap-users",
        "update",
        {"uri": "ldap://127.0.0.1:1", "base_dn": "dc=example,dc=test"},
    )
    with pytest.raises(UsageError, match="reads a directory"):
        app.uploads.upload("ad", io.BytesIO(CSV), "x.csv")
    with pytest.raises(NotFoundError):
        app.uploads.upload("nope", io.BytesIO(CSV), "x.csv")
    with pytest.raises(NotFoundError):
        app.uploads.info("nope")


def test_a_path_outside_the_uploads_is_not_read_as_an_upload(app: App, tmp_path: Path) -> None:
    other = write_csv(tmp_path / "other.csv", PHONEBOOK_HEADER, [["Max", "+49 991 1"] + [""] * 7])
    app.profiles.update("pb", {"path": str(other)})
    report = app.runs.run("pb", dry_run=True)
    assert report.status == "failed" and "no file has been uploaded" in report.message
    app.profiles.update("pb", {"upload": "no"})
    assert app.runs.run("pb", dry_run=True).counts.created == 1


def test_deleting_the_profile_removes_its_uploaded_files(app: App) -> None:
    app.uploads.upload("pb", io.BytesIO(CSV), "phonebook.csv")
    kept = Path(app.profiles.get("pb").settings["path"])
    assert kept.is_file()
    app.profiles.delete("pb")
    assert not kept.exists() and not any(kept.parent.iterdir())


@pytest.mark.parametrize(
    "settings",
    [
        {"url": "https://files.example.test/pb.csv"},
        {"use_share": "yes", "share": r"\\files\pbx", "path": r"test\pb.csv"},
    ],
    ids=["url", "share"],
)
def test_an_upload_switches_a_profile_from_a_url_or_share_to_the_file(
    app: App, settings: dict[str, str]
) -> None:
    app.profiles.create("other", "csv-phonebook", "mirror", settings)
    app.uploads.upload("other", io.BytesIO(CSV), "phonebook.csv")
    profile = app.profiles.get("other")
    assert profile.settings["upload"] == "yes"
    assert profile.settings.get("url", "") == "" and profile.settings.get("use_share") == "no"
    assert app.runs.run("other", dry_run=True).counts.created == 2  # the file, not the URL
    # Choosing a URL or share again while upload=yes is refused, naming upload.
    for again in ({"url": "https://files.example.test/pb.csv"}, {"use_share": "yes"}):
        with pytest.raises(ConfigError) as refused:
            app.profiles.save("other", settings=again)
        assert refused.value.field == "upload"
    assert app.profiles.get("other") == profile
