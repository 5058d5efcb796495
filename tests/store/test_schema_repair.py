"""A damaged schema is found by `db check` and repaired by `db upgrade`."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect, text

from pbx_connector.store import db as store_db
from pbx_connector.sync.runner import run_profile
from tests.helpers import PHONEBOOK_HEADER, Cli, make_profile, phonebook_row, write_csv


def test_check_finds_and_upgrade_repairs_a_missing_index(engine: Engine, tmp_path: Path) -> None:
    assert store_db.check_schema(engine) == []
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_phonebook_phone_e164"))
    assert store_db.check_schema(engine) == ["index ix_phonebook_phone_e164 is missing"]
    assert store_db.repair_schema(engine) == ["index ix_phonebook_phone_e164 is missing"]
    assert store_db.check_schema(engine) == []
    names = {ix["name"] for ix in inspect(engine).get_indexes("phonebook")}
    assert "ix_phonebook_phone_e164" in names
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, [phonebook_row("A", "+49 991 1")])
    make_profile(engine, "pb", "csv-phonebook", path)
    assert run_profile(engine, "pb")["status"] == "ok"


def test_db_check_and_upgrade_on_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    cli = Cli(db)
    assert "schema intact" in cli("db", "check").stdout
    engine = store_db.make_engine(f"sqlite:///{db}")
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_users_phone_e164"))
        conn.execute(text("DROP TABLE auth_lockouts"))
    engine.dispose()
    checked = cli("db", "check", code=3)
    assert "damaged: index ix_users_phone_e164 is missing" in checked.stderr
    assert "damaged: table auth_lockouts is missing" in checked.stderr
    assert "db upgrade" in checked.stderr
    upgraded = cli("db", "upgrade")
    assert "repaired: index ix_users_phone_e164 is missing" in upgraded.stdout
    assert "schema intact" in cli("db", "check").stdout
