"""Schedules through the application core: set and shown, slots claimed once (also by
two processes' worth of engines at once), busy profiles skipped, failures flagged."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from pbx_connector.errors import ConfigError
from pbx_connector.service import App, words
from pbx_connector.service.schedules import FAILING_AFTER
from pbx_connector.store import runs as run_store
from tests.helpers import PHONEBOOK_HEADER, make_profile, phonebook_row, write_csv


@pytest.fixture
def app(engine: Engine, tmp_path: Path) -> App:
    rows = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(5)]
    make_profile(
        engine, "pb", "csv-phonebook", write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)
    )
    return App(engine)


def _later(hours: float) -> datetime:
    return datetime.now(UTC) + timedelta(hours=hours)


def test_a_schedule_is_set_shown_and_removed(app: App) -> None:
    view = app.schedules.set("pb", "Daily  02:30", "Europe/Berlin")
    schedule = view.schedule
    assert schedule is not None
    assert (schedule.expression, schedule.cron) == ("daily 02:30", "30 2 * * *")
    assert (schedule.timezone, schedule.timezone_from) == ("Europe/Berlin", "profile")
    assert len(schedule.next_runs) == 5
    assert all(r.endswith(("T02:30:00+01:00", "T02:30:00+02:00")) for r in schedule.next_runs)
    assert view.settings["schedule"] == "daily 02:30"
    listed = app.profiles.list()[0].schedule
    assert listed is not None and listed.next_run == schedule.next_run
    # Export carries the schedule (it is a setting), never a secret.
    exported = json.loads(app.profiles.export("pb"))
    assert exported["settings"]["schedule"] == "daily 02:30"
    assert app.schedules.clear("pb").schedule is None
    assert app.profiles.get("pb").schedule is None


def test_the_zone_follows_the_instance_then_the_machine(app: App) -> None:
    view = app.schedules.set("pb", "hourly", "")
    assert view.schedule is not None and view.schedule.timezone_from == "machine"
    app.catalog.set_config({"timezone": "Asia/Tokyo"})
    follows = app.profiles.get("pb").schedule
    assert follows is not None
    assert (follows.timezone, follows.timezone_from) == ("Asia/Tokyo", "instance")
    assert follows.next_runs[0].endswith("+09:00")


def test_a_wrong_schedule_changes_nothing(app: App) -> None:
    app.schedules.set("pb", "hourly")
    with pytest.raises(ConfigError) as caught:
        app.schedules.set("pb", "every 7 minutes")
    assert caught.value.field == "schedule"
    with pytest.raises(ConfigError) as caught:
        app.schedules.set("pb", "daily 03:00", "Berlin/Mitte")
    assert caught.value.field == "schedule_timezone"
    kept = app.profiles.get("pb").schedule
    assert kept is not None and kept.expression == "hourly"


def test_the_latest_due_slot_is_claimed_once_and_runs(app: App) -> None:
    app.schedules.set("pb", "every 5 minutes", "UTC")
    assert app.schedules.claim_due() == []  # nothing due right after it was set
    now = _later(1)
    claimed = app.schedules.claim_due(now)
    assert len(claimed) == 1
    run = claimed[0]
    assert run.status == "queued" and run.slot <= now and run.slot.minute % 5 == 0
    assert now - run.slot < timedelta(minutes=5)  # the latest slot, not the first missed
    assert app.schedules.claim_due(now) == []
    report = app.runs.execute(run.run_id)
    assert (report.trigger, report.status, report.counts.created) == ("schedule", "ok", 5)
    assert report.scheduled_for == run.slot.isoformat(timespec="seconds")


def test_a_slot_of_a_busy_profile_is_recorded_as_skipped(app: App, engine: Engine) -> None:
    app.schedules.set("pb", "hourly", "UTC")
    profile_id = app.profiles.get("pb").id
    holder = run_store.begin_run(engine, profile_id, "pb", dry_run=False, trigger="cli")
    claimed = app.schedules.claim_due(_later(2))
    assert [c.status for c in claimed] == ["skipped"]
    skipped = app.runs.get(claimed[0].run_id)
    assert skipped.status == "skipped" and skipped.trigger == "schedule"
    assert f"skipped: profile 'pb' is already running (run {holder}" in skipped.message
    assert skipped.errors == []
    assert [r.id for r in app.runs.list("pb", status="skipped").items] == [skipped.id]
    assert words.summary(skipped.model_dump(mode="json")).startswith("nothing read or written")
    # Not a failure: the flag counts only runs that ran.
    view = app.profiles.get("pb").schedule
    assert view is not None and view.failures == 0 and not view.failing


def test_a_queued_scheduled_run_that_finds_its_profile_busy_is_skipped(
    app: App, engine: Engine
) -> None:
    app.schedules.set("pb", "hourly", "UTC")
    (claimed,) = app.schedules.claim_due(_later(2))
    profile_id = app.profiles.get("pb").id
    run_store.begin_run(engine, profile_id, "pb", dry_run=False, trigger="cli")
    report = app.runs.execute(claimed.run_id)
    assert report.status == "skipped" and "already running" in report.message
    assert app.runs.get(claimed.run_id).status == "skipped"


def test_a_profile_whose_scheduled_runs_keep_failing_is_flagged(app: App, tmp_path: Path) -> None:
    app.schedules.set("pb", "hourly", "UTC")
    (tmp_path / "pb.csv").unlink()
    for hours in range(1, FAILING_AFTER + 1):
        (claimed,) = app.schedules.claim_due(_later(hours))
        assert app.runs.execute(claimed.run_id).status == "failed"
        view = app.profiles.get("pb").schedule
        assert view is not None and view.failures == hours
        assert view.failing == (hours >= FAILING_AFTER)
    # Still scheduled; one good run clears the flag.
    write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, [phonebook_row("Back", "+49 991 1")])
    (claimed,) = app.schedules.claim_due(_later(FAILING_AFTER + 1))
    assert app.runs.execute(claimed.run_id).status == "ok"
    view = app.profiles.get("pb").schedule
    assert view is not None and view.failures == 0 and not view.failing


def test_two_processes_claiming_the_same_slot_run_it_once(app: App, db_url: str) -> None:
    app.schedules.set("pb", "every 10 minutes", "UTC")
    now = _later(1)
    apps = [App(create_engine(db_url)) for _ in range(4)]
    results: list[int] = []
    barrier = threading.Barrier(len(apps))

    def claim(other: App) -> None:
        barrier.wait()
        results.extend(c.run_id for c in other.schedules.claim_due(now))

    threads = [threading.Thread(target=claim, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1
    runs = [r for r in app.runs.list("pb").items if r.trigger == "schedule"]
    assert [r.id for r in runs] == results
    for other in apps:
        other.engine.dispose()


def test_preview_shows_an_unsaved_schedule(app: App) -> None:
    view = app.schedules.preview("weekdays 06:00", "UTC")
    assert view is not None and view.cron == "0 6 * * mon-fri"
    days = {datetime.fromisoformat(r).weekday() for r in view.next_runs}
    assert days <= {0, 1, 2, 3, 4}
    assert app.schedules.preview("off") is None
    assert app.profiles.get("pb").schedule is None


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Tokyo", "America/New_York"])
def test_slots_of_a_schedule_in_any_zone_are_kept_as_the_instants_they_are(
    app: App, zone: str
) -> None:
    app.schedules.set("pb", "every 5 minutes", zone)
    start = _later(1)
    for minutes in (0, 5, 10):
        now = start + timedelta(minutes=minutes)
        (claimed,) = app.schedules.claim_due(now)  # each new slot once, none skipped
        assert now - claimed.slot < timedelta(minutes=5)
        report = app.runs.get(claimed.run_id)
        assert report.scheduled_for is not None
        assert datetime.fromisoformat(report.scheduled_for) == claimed.slot
        assert app.schedules.claim_due(now) == []
