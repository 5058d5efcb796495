"""`runs.latest()`: the last run of each profile for an overview, without its lists."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from pbx_connector.service import App
from tests.helpers import PHONEBOOK_HEADER, phonebook_row, write_csv


def test_the_last_run_of_each_profile_with_counts_and_no_lists(
    engine: Engine, tmp_path: Path
) -> None:
    app = App(engine)
    for name, rows in (("a", 3), ("b", 2)):
        data = [phonebook_row(f"{name} {n}", f"+49 991 {n}{len(name)}") for n in range(rows)]
        path = write_csv(tmp_path / f"{name}.csv", PHONEBOOK_HEADER, data)
        app.profiles.create(name, "csv-phonebook", settings={"path": str(path)})
    app.runs.run("a", dry_run=True)
    applied = app.runs.run("a")
    only_b = app.runs.run("b", dry_run=True)
    latest = app.runs.latest()
    assert set(latest) == {"a", "b"}
    assert latest["a"].id == applied.id and latest["a"].counts.created == 3
    assert latest["a"].status == "ok" and latest["a"].applied and latest["a"].target == "phonebook"
    assert latest["b"].id == only_b.id and latest["b"].dry_run
    assert latest["a"].changes == [] and app.runs.get(applied.id).changes  # only on its own
