"""`runs` and `run show` as a user reads them: the trigger of each run, and the slot of a
scheduled one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from pbx_connector.service import App
from pbx_connector.store import runs as run_store
from pbx_connector.store.db import open_store_engine
from tests.helpers import PHONEBOOK_HEADER, Cli, phonebook_row, write_csv


def _scheduled_run(cli: Cli) -> tuple[int, str]:
    """Claim a slot of the profile's schedule and carry it out, as `serve` does: the run's
    id and its slot."""
    engine = open_store_engine(str(cli.db))
    try:
        app = App(engine)
        (claimed,) = app.schedules.claim_due(datetime.now(UTC) + timedelta(hours=2))
        assert app.runs.execute(claimed.run_id).status == "ok"
        return claimed.run_id, claimed.slot.isoformat(timespec="seconds")
    finally:
        engine.dispose()


def test_runs_show_their_trigger_and_a_scheduled_run_its_slot(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, [phonebook_row("Max", "+49 991 1")])
    cli = Cli(tmp_path / "cli.db")
    cli("profile", "create", "pb", "--template", "csv-phonebook", "--set", f"path={path}")
    cli("sync", "pb", "--dry-run")
    cli("sync", "pb")
    cli("profile", "schedule", "pb", "hourly", "--timezone", "UTC")
    scheduled, slot = _scheduled_run(cli)

    lines = cli("runs").stdout.splitlines()
    header = lines[0].split()
    assert header == [
        "ID",
        "PROFILE",
        "STARTED",
        "KIND",
        "TRIGGER",
        "STATUS",
        "CREATED",
        "UPDATED",
        "DELETED",
        "INVALID",
        "CONFLICTS",
    ]
    rows = [dict(zip(header, line.split(), strict=True)) for line in lines[1:4]]
    assert [(r["ID"], r["KIND"], r["TRIGGER"]) for r in rows] == [
        (str(scheduled), "apply", "schedule"),
        (str(scheduled - 1), "apply", "cli"),
        (str(scheduled - 2), "dry-run", "cli"),
    ]
    assert max(len(line) for line in lines) <= 120

    shown = cli("run", "show", str(scheduled)).stdout.splitlines()[0]
    assert shown.startswith(f"run {scheduled} of profile 'pb', schedule for {slot}, started ")
    by_hand = cli("run", "show", str(scheduled - 1)).stdout.splitlines()[0]
    assert by_hand.startswith(f"run {scheduled - 1} of profile 'pb', cli, started ")
    assert cli.json("run", "show", str(scheduled))["scheduled_for"] == slot


def test_a_skipped_slot_shows_its_trigger(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, [phonebook_row("Max", "+49 991 1")])
    cli = Cli(tmp_path / "cli.db")
    cli("profile", "create", "pb", "--template", "csv-phonebook", "--set", f"path={path}")
    cli("profile", "schedule", "pb", "hourly", "--timezone", "UTC")
    engine = open_store_engine(str(cli.db))
    try:
        app = App(engine)
        held = run_store.begin_run(
            engine, app.profiles.get("pb").id, "pb", dry_run=False, trigger="api"
        )
        (claimed,) = app.schedules.claim_due(datetime.now(UTC) + timedelta(hours=2))
        assert claimed.status == "skipped"
    finally:
        engine.dispose()
    lines = cli("runs").stdout.splitlines()
    header = lines[0].split()
    rows = [dict(zip(header, line.split(), strict=True)) for line in lines[1:]]
    assert [(r["ID"], r["TRIGGER"], r["STATUS"]) for r in rows] == [
        (str(claimed.run_id), "schedule", "skipped"),
        (str(held), "api", "running"),
    ]
