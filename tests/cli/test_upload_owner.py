"""`profile export` of a profile with an uploaded file, imported under another name on
the same instance: the new profile reads no file until one is uploaded to it."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import PHONEBOOK_HEADER, Cli, write_csv

NOT_UPLOADED = "no file has been uploaded to this profile yet"


def _book(path: Path, name: str, phone: str) -> Path:
    return write_csv(path, PHONEBOOK_HEADER, [[name, phone] + [""] * 7])


def test_an_imported_upload_profile_fails_its_runs_until_a_file_is_uploaded_to_it(
    tmp_path: Path,
) -> None:
    cli = Cli(tmp_path / "cli.db")
    cli("profile", "create", "up1", "--template", "csv-phonebook", "--set", "upload=yes")
    cli("profile", "upload", "up1", str(_book(tmp_path / "a.csv", "Max", "+49 991 1")))
    export = tmp_path / "up1.json"
    cli("profile", "export", "up1", "-o", str(export))
    assert '"upload": "yes"' in export.read_text()
    cli("profile", "import", str(export), "--name", "up2")

    result = cli("sync", "up2", "--dry-run", code=3)
    assert NOT_UPLOADED in result.stderr + result.stdout
    assert "Would create" not in result.stdout
    result = cli("sync", "up2", code=3)
    assert NOT_UPLOADED in result.stderr + result.stdout
    assert cli.json("phonebook", "list") == []
    assert (
        "Nothing has been uploaded to profile 'up2' yet." in cli("profile", "upload", "up2").stdout
    )

    # A new upload to up1 changes nothing for up2: it still has no file of its own.
    cli("profile", "upload", "up1", str(_book(tmp_path / "b.csv", "Eva", "+49 991 2")))
    result = cli("sync", "up2", "--dry-run", code=3)
    assert NOT_UPLOADED in result.stderr + result.stdout

    cli("profile", "upload", "up2", str(_book(tmp_path / "c.csv", "Otto", "+49 991 3")))
    assert "Created phonebook entry 'Otto' (line 2)" in cli("sync", "up2").stdout
    assert "Created phonebook entry 'Eva' (line 2)" in cli("sync", "up1").stdout
