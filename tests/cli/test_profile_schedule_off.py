"""`profile schedule NAME off` and the NEXT RUN column of `profile list`, as a user types
and reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pbx_connector.service import App
from pbx_connector.store.db import open_store_engine
from tests.helpers import PHONEBOOK_HEADER, Cli, phonebook_row, write_csv


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, [phonebook_row("Max", "+49 991 1")])
    c = Cli(tmp_path / "cli.db")
    c("profile", "create", "pb", "--template", "csv-phonebook", "--set", f"path={path}")
    c("profile", "create", "other", "--template", "csv-phonebook", "--set", f"path={path}")
    return c


def _next_run_column(cli: Cli) -> dict[str, str]:
    """The NEXT RUN cell of each profile in `profile list`, by name."""
    header, *rows = cli("profile", "list").stdout.splitlines()
    assert header.split("  ")[0] == "NAME" and header.endswith("NEXT RUN")
    start = header.index("NEXT RUN")
    return {row.split()[0]: row[start:].strip() for row in rows}


def _due_slots(cli: Cli, within: timedelta) -> int:
    """How many slots `serve` would claim now if the clock were `within` later."""
    engine = open_store_engine(str(cli.db))
    try:
        return len(App(engine).schedules.claim_due(datetime.now(UTC) + within))
    finally:
        engine.dispose()


def test_the_next_run_column_shows_the_next_run_of_a_scheduled_profile(cli: Cli) -> None:
    assert _next_run_column(cli) == {"other": "-", "pb": "-"}
    before = datetime.now(UTC)
    out = cli("profile", "schedule", "pb", "every 15 minutes", "--timezone", "UTC").stdout
    after = datetime.now(UTC)
    column = _next_run_column(cli)
    assert column["other"] == "-"
    shown = column["pb"]
    assert f"next run {shown}" in out
    assert cli.json("profile", "show", "pb")["schedule"]["next_runs"][0] == shown
    slot = datetime.fromisoformat(shown)
    assert slot.utcoffset() == timedelta(0)
    assert before < slot <= after + timedelta(minutes=15)
    assert slot.minute % 15 == 0 and slot.second == slot.microsecond == 0

    # In the profile's zone: a daily time is that time there, within a day from now.
    cli("profile", "schedule", "other", "daily 02:30", "--timezone", "Asia/Tokyo")
    daily = datetime.fromisoformat(_next_run_column(cli)["other"])
    assert daily.isoformat().endswith("T02:30:00+09:00")
    assert before < daily <= datetime.now(UTC) + timedelta(days=1)


def test_schedule_off_removes_the_schedule(cli: Cli) -> None:
    cli("profile", "schedule", "pb", "hourly", "--timezone", "UTC")
    assert _next_run_column(cli)["pb"] != "-"
    assert "next run" in cli("profile", "show", "pb").stdout

    out = cli("profile", "schedule", "pb", "off").stdout
    assert out == "Profile 'pb' has no schedule: it runs only when started.\n"
    assert _next_run_column(cli) == {"other": "-", "pb": "-"}
    assert "schedule: (none: runs only when started)" in cli("profile", "show", "pb").stdout
    shown = cli.json("profile", "show", "pb")
    assert shown["schedule"] is None and shown["settings"]["schedule"] == ""
    assert [p["schedule"] for p in cli.json("profile", "list")] == [None, None]
    # Nothing is due any more, even hours from now; and off again is no error.
    assert _due_slots(cli, timedelta(hours=3)) == 0
    assert "has no schedule" in cli("profile", "schedule", "pb", "off").stdout
