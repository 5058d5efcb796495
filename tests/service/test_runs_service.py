"""Runs through the application core: jobs (request, then execute), their progress, the
refusal of a second run, paging, and the typed report."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pbx_connector.errors import NotFoundError, RunLocked, UsageError
from pbx_connector.service import App
from pbx_connector.service.runs import Progress
from pbx_connector.store import runs as run_store
from tests.helpers import PHONEBOOK_HEADER, make_profile, phonebook_row, records, write_csv


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    rows = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(40)]
    make_profile(
        engine, "pb", "csv-phonebook", write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)
    )
    return App(engine)


def test_a_requested_run_is_queued_until_executed(app: App, engine: Engine) -> None:
    queued = app.runs.request("pb", dry_run=False, trigger="api")
    assert queued.status == "queued" and queued.target == "phonebook"
    assert not queued.applied and records(engine, "phonebook") == []
    done = app.runs.execute(queued.id)
    assert done.id == queued.id and done.status == "ok" and done.applied
    assert done.counts.created == 40 and len(records(engine, "phonebook")) == 40
    assert app.runs.get(queued.id).finished is not None


def test_force_is_kept_with_a_queued_run(app: App, engine: Engine, tmp_path: Path) -> None:
    app.runs.run("pb")
    write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, [phonebook_row("Only", "+49 991 1")])
    assert app.runs.run("pb").status == "aborted"
    forced = app.runs.request("pb", force=True)
    assert forced.force
    assert app.runs.execute(forced.id).status == "ok"
    assert [r["displayname"] for r in records(engine, "phonebook")] == ["Only"]


def test_a_request_while_a_run_holds_the_profile_is_refused_naming_it(
    app: App, engine: Engine
) -> None:
    profile_id = app.profiles_id = None  # noqa: F841 - documented below
    holder = app.runs.request("pb")
    started = threading.Event()
    release = threading.Event()

    def slow(n: int) -> None:
        started.set()
        release.wait(10)

    worker = threading.Thread(target=app.runs.execute, args=(holder.id, Progress(reading=slow)))
    worker.start()
    try:
        assert started.wait(10)
        with pytest.raises(RunLocked) as refused:
            app.runs.request("pb")
        assert refused.value.running_run_id == holder.id
        assert refused.value.http_status == 409
        assert app.runs.get(holder.id).status == "running"
    finally:
        release.set()
        worker.join(20)
    assert app.runs.get(holder.id).status == "ok"


def test_progress_is_stored_while_a_run_works(
    app: App, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_store, "PROGRESS_EVERY", 0.05)
    seen: list[object] = []
    run = app.runs.request("pb")

    def look(n: int) -> None:
        time.sleep(0.2)  # let the lease keeper write
        seen.append(app.runs.get(run.id).progress)

    app.runs.execute(run.id, Progress(reading=look))
    # Another process asking for the run while it read its 40 rows saw how far it was.
    assert [p.model_dump() if p else None for p in seen] == [
        {"phase": "reading", "done": 40, "total": None}
    ]
    assert app.runs.get(run.id).progress is None  # a finished run has none


def test_runs_are_listed_newest_first_with_a_total(app: App) -> None:
    for _ in range(3):
        app.runs.run("pb", dry_run=True)
    page = app.runs.list("pb", limit=2)
    assert page.total == 3 and [r.id for r in page.items] == [3, 2]
    assert [r.id for r in app.runs.list(limit=2, offset=2).items] == [1]
    with pytest.raises(UsageError):
        app.runs.list(limit=5000)


def test_missing_and_impossible_runs(app: App) -> None:
    with pytest.raises(NotFoundError):
        app.runs.get(99)
    with pytest.raises(NotFoundError):
        app.runs.get(2**63)
    with pytest.raises(NotFoundError):
        app.runs.request("nope")


def test_the_report_json_keeps_its_shape(app: App) -> None:
    report = app.runs.run("pb", dry_run=True).as_json()
    assert set(report) >= {
        "id",
        "profile",
        "trigger",
        "status",
        "dry_run",
        "applied",
        "message",
        "counts",
        "errors",
        "warnings",
        "changes",
        "started",
        "finished",
    }
    assert report["changes"][0] == {
        "action": "create",
        "record": "Entry 0",
        "key": "Entry 0 | +49 991 1000",
        "line": 2,
    }
