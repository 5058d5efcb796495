"""A run's life: its lock (a lease), its outcome committed with its changes, what an
interrupted run looks like, its plan spool, and the words of a run that wrote nothing."""

from __future__ import annotations

import os
import socket
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, delete, insert, select, update

from pbx_connector.service.words import describe_change, summary
from pbx_connector.store import runs as run_store
from pbx_connector.store.db import data_dir
from pbx_connector.store.tables import run_locks, runs
from pbx_connector.sync import plan as plan_module
from pbx_connector.sync.runner import Progress, run_profile
from tests.helpers import (
    PHONEBOOK_HEADER,
    USERS_HEADER,
    make_profile,
    phonebook_row,
    records,
    write_csv,
)


@pytest.fixture
def pb_csv(tmp_path: Path) -> Path:
    rows = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(30)]
    return write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)


def _lock(engine: Engine, profile_id: int) -> object:
    with engine.connect() as conn:
        return conn.execute(select(run_locks).where(run_locks.c.profile_id == profile_id)).first()


def _status(engine: Engine, run_id: int) -> str:
    with engine.connect() as conn:
        return str(run_store.get_run(conn, run_id)["status"])


def test_a_finished_run_leaves_no_lock_and_no_spool(engine: Engine, pb_csv: Path) -> None:
    profile = make_profile(engine, "pb", "csv-phonebook", pb_csv)
    assert run_profile(engine, "pb")["status"] == "ok"
    assert _lock(engine, profile.id or 0) is None
    spools = data_dir() / plan_module.SPOOL_DIR
    assert stat.S_IMODE(spools.stat().st_mode) == 0o700
    assert list(spools.iterdir()) == []


def test_a_run_whose_process_is_gone_is_shown_interrupted(engine: Engine, pb_csv: Path) -> None:
    profile = make_profile(engine, "pb", "csv-phonebook", pb_csv)
    assert profile.id is not None
    run_id = run_store.begin_run(engine, profile.id, "pb", dry_run=False, trigger="test")
    assert _status(engine, run_id) == "running"
    # The process dies: its lock stays behind, naming a process that no longer exists.
    with engine.begin() as conn:
        conn.execute(update(run_locks).values(pid=2**22 + 4321))
    report = _status(engine, run_id)
    assert report == "interrupted"
    # The next run takes the lock over and records the old run as interrupted for good.
    assert run_profile(engine, "pb")["status"] == "ok"
    with engine.connect() as conn:
        stored = conn.execute(select(runs.c.status).where(runs.c.id == run_id)).scalar_one()
    assert stored == "interrupted"


def test_a_lock_of_another_host_is_taken_over_only_after_its_lease(
    engine: Engine, pb_csv: Path
) -> None:
    profile = make_profile(engine, "pb", "csv-phonebook", pb_csv)
    assert profile.id is not None
    run_id = run_store.begin_run(engine, profile.id, "pb", dry_run=False, trigger="test")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(update(run_locks).values(host="elsewhere.example", pid=os.getpid()))
    refused = run_profile(engine, "pb")
    assert refused["status"] == "failed" and "elsewhere.example" in refused["message"]
    assert records(engine, "phonebook") == []
    # The other host stopped renewing: once the lease runs out, the lock is free.
    with engine.begin() as conn:
        conn.execute(update(run_locks).values(expires_at=now - timedelta(seconds=1)))
    assert _status(engine, run_id) == "interrupted"
    assert run_profile(engine, "pb")["status"] == "ok"
    assert len(records(engine, "phonebook")) == 30


def test_unlock_releases_a_lock_by_hand(engine: Engine, pb_csv: Path) -> None:
    profile = make_profile(engine, "pb", "csv-phonebook", pb_csv)
    assert profile.id is not None
    run_id = run_store.begin_run(engine, profile.id, "pb", dry_run=False, trigger="test")
    assert run_store.unlock(engine, profile.id, "pb") == run_id
    assert _status(engine, run_id) == "interrupted"
    assert run_profile(engine, "pb")["status"] == "ok"


def test_the_lease_is_renewed_while_a_run_works(
    engine: Engine, pb_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = make_profile(engine, "pb", "csv-phonebook", pb_csv)
    assert profile.id is not None
    monkeypatch.setattr(run_store, "LEASE", timedelta(seconds=0.3))
    run_id = run_store.begin_run(engine, profile.id, "pb", dry_run=False, trigger="test")
    first = _lock(engine, profile.id).expires_at  # type: ignore[attr-defined]
    import time

    # Renewed every 0.1 s; a busy machine (the whole suite in two processes) may delay
    # the keeper's thread, so wait for the renewal rather than a fixed time.
    with run_store.LeaseKeeper(engine, profile.id, run_id):
        deadline = time.monotonic() + 20
        renewed = first
        while renewed <= first and time.monotonic() < deadline:
            time.sleep(0.1)
            renewed = _lock(engine, profile.id).expires_at  # type: ignore[attr-defined]
    assert renewed > first
    assert _status(engine, run_id) == "running"


def test_a_run_that_lost_its_lock_writes_nothing(engine: Engine, pb_csv: Path) -> None:
    profile = make_profile(engine, "pb", "csv-phonebook", pb_csv)
    assert profile.id is not None

    def unlock_midway(n: int) -> None:
        # An administrator releases the lock while the run reads its source.
        with engine.begin() as conn:
            conn.execute(delete(run_locks))

    report = run_profile(engine, "pb", progress=Progress(reading=unlock_midway))
    assert report["status"] == "failed"
    assert "lost its lock" in report["message"]
    assert records(engine, "phonebook") == []


def test_ctrl_c_during_a_run_records_it_interrupted_and_changes_nothing(
    engine: Engine, pb_csv: Path
) -> None:
    profile = make_profile(engine, "pb", "csv-phonebook", pb_csv)

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_profile(engine, "pb", progress=Progress(writing=interrupt))
    with engine.connect() as conn:
        (run,) = run_store.list_runs(conn, "pb")
    assert run["status"] == "interrupted" and not run["applied"]
    assert records(engine, "phonebook") == []
    assert _lock(engine, profile.id or 0) is None
    assert run_profile(engine, "pb")["status"] == "ok"


def test_an_applied_run_commits_its_outcome_with_its_changes(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    seen: list[str] = []

    def look(done: int, total: int) -> None:
        # While the changes are written, the run is still running for everybody else.
        with engine.connect() as conn:
            seen.append(conn.execute(select(runs.c.status)).scalar_one())

    report = run_profile(engine, "pb", progress=Progress(writing=look))
    assert report["status"] == "ok" and report["applied"]
    assert seen and set(seen) == {"running"}


def test_stale_spools_are_removed_and_secrets_are_never_spooled_plain(
    engine: Engine, tmp_path: Path
) -> None:
    spools = data_dir() / plan_module.SPOOL_DIR
    spools.mkdir(mode=0o700, exist_ok=True)
    stale = spools / f"plan-{socket.gethostname()}-{2**22 + 99}-abc123.spool"
    stale.write_bytes(b"left behind by a kill")
    path = write_csv(
        tmp_path / "u.csv",
        [*USERS_HEADER, "password"],
        [[f"user{n}", f"User {n}", "", "", "", str(200 + n), f"Pl41n-{n}!"] for n in range(3)],
    )
    make_profile(engine, "u", "csv-users", path, variables={"password": "{{ password }}"})
    contents: list[bytes] = []

    def peek(done: int, total: int) -> None:
        contents.extend(p.read_bytes() for p in spools.glob("*.spool"))

    report = run_profile(engine, "u", progress=Progress(writing=peek))
    assert report["status"] == "ok" and report["counts"]["created"] == 3
    assert not stale.exists()
    assert contents and all(b"Pl41n-" not in c for c in contents)
    assert list(spools.iterdir()) == []


def test_a_dry_run_spools_no_secret_at_all(engine: Engine, tmp_path: Path) -> None:
    from pbx_connector.store.profiles import get_profile
    from pbx_connector.store.settings import get_settings
    from pbx_connector.sync import runner

    path = write_csv(
        tmp_path / "u.csv",
        [*USERS_HEADER, "password"],
        [["anna", "Anna", "", "", "", "201", "pw-1!"]],
    )
    make_profile(engine, "u", "csv-users", path, variables={"password": "{{ password }}"})
    with engine.connect() as conn:
        profile, instance = get_profile(conn, "u"), get_settings(conn)
    # What a dry run and a real run put in their spools (what a kill could leave behind).
    for dry_run, expected in ((True, plan_module.NOT_SPOOLED), (False, None)):
        plan = runner._plan(engine, profile, instance, dry_run, Progress())
        try:
            (write,) = list(plan.spool)
        finally:
            plan.close()
        spooled = write.values["password"]
        assert isinstance(spooled, plan_module.Hashed) and "pw-1!" not in spooled
        if expected is not None:
            assert spooled == expected
        else:
            assert spooled.startswith("$argon2")
    report = run_profile(engine, "u", dry_run=True)
    assert report["status"] == "ok" and report["counts"]["created"] == 1
    assert all(u["username"] != "anna" for u in records(engine, "users"))


def test_an_aborted_run_says_what_it_would_have_done(engine: Engine, tmp_path: Path) -> None:
    rows = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(12)]
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)
    make_profile(engine, "pb", "csv-phonebook", path)
    run_profile(engine, "pb")
    write_csv(path, PHONEBOOK_HEADER, rows[:6])
    report = run_profile(engine, "pb")
    assert report["status"] == "aborted" and not report["applied"]
    assert report["counts"]["deleted"] == 6
    assert len(records(engine, "phonebook")) == 12
    lines = [line for c in report["changes"] for line in describe_change(c, "phonebook", True)]
    assert lines and all(line.startswith("Would delete") for line in lines)
    assert "6 would be deleted" in summary(report)
    with engine.connect() as conn:
        stored = run_store.get_run(conn, report["id"])
    assert stored["applied"] is False and stored["status"] == "aborted"


def test_a_lock_row_from_before_leases_still_expires(engine: Engine, pb_csv: Path) -> None:
    profile = make_profile(engine, "pb", "csv-phonebook", pb_csv)
    with engine.begin() as conn:
        conn.execute(
            insert(run_locks).values(
                profile_id=profile.id,
                run_id=77,
                host="elsewhere.example",
                pid=1,
                acquired_at=datetime.now(UTC) - timedelta(hours=1),
                expires_at=None,
            )
        )
    assert run_profile(engine, "pb")["status"] == "ok"
