"""A profile reads only a file uploaded to itself: an export names the absolute path of
the file uploaded to its profile, and a profile imported from it on the same instance
must not read that file (nor any other profile's), whatever its `path` says."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pbx_connector.errors import ConfigError
from pbx_connector.service import App
from tests.helpers import records

CSV = b"displayname,phone\nMax Muster,+49 991 12345\nEva Example,+49 991 12399\n"
NOT_UPLOADED = "no file has been uploaded to this profile yet"


@pytest.fixture
def app(engine: Engine) -> App:
    core = App(engine)
    core.profiles.create("up1", "csv-phonebook", "mirror", {"upload": "yes"})
    core.uploads.upload("up1", io.BytesIO(CSV), "phonebook.csv")
    assert core.runs.run("up1").counts.created == 2
    return core


def test_a_profile_imported_on_the_same_instance_does_not_read_the_file_of_another(
    app: App, engine: Engine
) -> None:
    kept = app.profiles.get("up1").settings["path"]
    app.profiles.import_(app.profiles.export("up1"), "up2")
    assert app.profiles.get("up2").settings["path"] == kept  # the export's path, as it was
    assert app.uploads.info("up2") is None
    for dry_run in (True, False):
        report = app.runs.run("up2", dry_run=dry_run)
        assert report.status == "failed" and NOT_UPLOADED in report.message
        assert report.counts.created == report.counts.deleted == 0
    with pytest.raises(ConfigError, match=NOT_UPLOADED):
        app.profiles.preview("up2", 5)
    # Nothing changed, and up1 still reads its own file.
    assert len(records(engine, "phonebook")) == 2
    assert Path(kept).read_bytes() == CSV
    assert app.runs.run("up1", dry_run=True).counts.unchanged == 2


def test_no_path_reaches_the_file_of_another_profile(app: App) -> None:
    kept = Path(app.profiles.get("up1").settings["path"])
    app.profiles.import_(app.profiles.export("up1"), "up2")
    up2 = app.profiles.get("up2")
    own = kept.parent.parent / str(up2.id)
    for path in (kept, own / ".." / kept.parent.name / kept.name):
        app.profiles.update("up2", {"path": str(path)})
        report = app.runs.run("up2", dry_run=True)
        assert report.status == "failed" and NOT_UPLOADED in report.message, path


def test_an_imported_profile_reads_the_file_uploaded_to_it(app: App, engine: Engine) -> None:
    app.profiles.import_(app.profiles.export("up1"), "up2")
    one = b"displayname,phone\nOtto Other,+49 991 55555\n"
    app.uploads.upload("up2", io.BytesIO(one), "other.csv")
    report = app.runs.run("up2")
    assert report.status == "ok" and report.counts.created == 1
    assert app.runs.run("up1", dry_run=True).counts.unchanged == 2
    assert len(records(engine, "phonebook")) == 3
