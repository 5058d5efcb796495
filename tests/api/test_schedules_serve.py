"""Schedules carried out by `serve` itself: set over the API, run on time with trigger
`schedule`, missed slots run once at start, and two processes on one store run each slot
once. Schedules of seconds (six-field cron) keep these tests short."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from pbx_connector.service import App
from pbx_connector.store.tables import profiles as profiles_table
from tests.api.conftest import Server, run_cli
from tests.api.test_serve_start import serving
from tests.helpers import PHONEBOOK_HEADER, phonebook_row, write_csv


def _scheduled(core: App, name: str) -> list[Any]:
    return [r for r in core.runs.list(name, limit=500).items if r.trigger == "schedule"]


def _wait_for(check: Any, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _profile(db: str, home: Path, tmp_path: Path, name: str = "pb") -> None:
    rows = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(3)]
    path = write_csv(tmp_path / f"{name}.csv", PHONEBOOK_HEADER, rows)
    run_cli(db, home, "profile", "create", name, "-t", "csv-phonebook", "--set", f"path={path}")


def test_a_schedule_set_over_the_api_runs_in_serve_until_removed(
    server: Server, tmp_path: Path
) -> None:
    _profile(server.db, server.home, tmp_path)
    core = App.open(server.db)
    with server.client(server.admin_token) as api:
        answer = api.put("/api/v1/profiles/pb/schedule", json={"schedule": "*/2 * * * * *"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["schedule"]["cron"] == "*/2 * * * * *"
        _wait_for(lambda: len([r for r in _scheduled(core, "pb") if r.status == "ok"]) >= 2)
        runs = _scheduled(core, "pb")
        assert runs[-1].counts.created == 3  # the first scheduled run imported the file
        slots = [datetime.fromisoformat(r.scheduled_for) for r in runs]
        assert all(s.second % 2 == 0 for s in slots)
        listed = api.get("/api/v1/profiles").json()["items"][0]["schedule"]
        assert listed["next_runs"] and listed["failing"] is False
        assert api.delete("/api/v1/profiles/pb/schedule").status_code == 204
        assert api.get("/api/v1/profiles/pb/schedule").json() == {"schedule": None}
        time.sleep(1)  # a run claimed just before may still finish
        count = len(_scheduled(core, "pb"))
        time.sleep(4)
        assert len(_scheduled(core, "pb")) == count
        wrong = api.put("/api/v1/profiles/pb/schedule", json={"schedule": "every 7 minutes"})
        assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "schedule"
    core.engine.dispose()


def test_a_schedule_set_with_the_cli_is_followed_and_failures_are_flagged(
    server: Server, tmp_path: Path
) -> None:
    _profile(server.db, server.home, tmp_path)
    (tmp_path / "pb.csv").unlink()  # every run fails from now on
    server.cli("profile", "schedule", "pb", "*/2 * * * * *")
    core = App.open(server.db)
    # Another process changed the store: serve sees it at its next look (10 s at most).
    _wait_for(lambda: len(_scheduled(core, "pb")) >= 3, seconds=60)
    with server.client(server.admin_token) as api:
        _wait_for(lambda: api.get("/api/v1/profiles/pb").json()["schedule"]["failing"])
        schedule = api.get("/api/v1/profiles/pb").json()["schedule"]
        assert schedule["failures"] == 3 and schedule["next_runs"]  # still scheduled
    assert "(failing)" in server.cli("profile", "list").stdout
    core.engine.dispose()


def test_slots_missed_while_serve_was_down_run_once_at_start(db_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _profile(db_url, home, tmp_path)
    run_cli(db_url, home, "profile", "schedule", "pb", "daily 03:00", "--timezone", "UTC")
    core = App.open(db_url)
    with core.transaction() as conn:  # as if set three days ago, with no run since
        conn.execute(
            update(profiles_table).values(updated_at=datetime.now(UTC) - timedelta(days=3))
        )
    with open(tmp_path / "serve.log", "w") as log, serving(db_url, home, log.fileno()):
        _wait_for(lambda: [r.status for r in _scheduled(core, "pb")] == ["ok"])
        time.sleep(2)
    runs = _scheduled(core, "pb")
    assert len(runs) == 1
    slot = datetime.fromisoformat(runs[0].scheduled_for or "")
    now = datetime.now(UTC)
    assert (slot.hour, slot.minute) == (3, 0) and timedelta(0) < now - slot <= timedelta(days=1)
    core.engine.dispose()


def test_two_serve_processes_on_one_store_run_each_slot_once(db_url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _profile(db_url, home, tmp_path)
    core = App.open(db_url)
    logs = [open(tmp_path / f"serve-{n}.log", "w") for n in range(2)]  # noqa: SIM115
    try:
        with serving(db_url, home, logs[0].fileno()), serving(db_url, home, logs[1].fileno()):
            run_cli(db_url, home, "profile", "schedule", "pb", "*/2 * * * * *")
            # Both processes follow it within their 10 s look at the store; then watch
            # six slots go by.
            _wait_for(lambda: len(_scheduled(core, "pb")) >= 1, seconds=45)
            first = len(_scheduled(core, "pb"))
            _wait_for(lambda: len(_scheduled(core, "pb")) >= first + 6, seconds=60)
    finally:
        for log in logs:
            log.close()
    runs = _scheduled(core, "pb")
    slots = sorted(datetime.fromisoformat(r.scheduled_for or "") for r in runs)
    assert max(Counter(slots).values()) == 1
    # A slot that came while the run of the one before was still going (a loaded
    # machine) is recorded as skipped, never run twice or failed.
    statuses = {r.status for r in runs}
    assert "ok" in statuses and statuses <= {"ok", "skipped"}, [(r.status, r.message) for r in runs]
    # Every slot from the first to the last ran: neither process skipped one the other
    # had not taken.
    gaps = {(b - a).total_seconds() for a, b in pairwise(slots)}
    assert gaps == {2.0}, sorted(gaps)
    for n in range(2):
        assert "Traceback" not in (tmp_path / f"serve-{n}.log").read_text()
    core.engine.dispose()


def test_an_unknown_profile_has_no_schedule_to_set(server: Server) -> None:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    ) as api:
        answer = api.put("/api/v1/profiles/nope/schedule", json={"schedule": "hourly"})
        assert answer.status_code == 404
