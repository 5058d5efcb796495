"""The store on SQLite and PostgreSQL: migrations, the admin account, profiles, secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, select

from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import TARGETS, clean_record
from pbx_connector.errors import NotFoundError, ProtectedRecordError, UsageError
from pbx_connector.store import db as store_db
from pbx_connector.store import records as record_store
from pbx_connector.store.profiles import (
    Profile,
    delete_profile,
    get_profile,
    insert_profile,
    save_profile,
)
from pbx_connector.store.search import is_search_object
from pbx_connector.store.settings import get_settings, set_setting
from pbx_connector.store.tables import metadata, profiles
from pbx_connector.sync.runner import run_profile
from tests.helpers import PHONEBOOK_HEADER, make_profile, phonebook_row, records, write_csv


def test_migrations_create_exactly_the_declared_schema(engine: Engine) -> None:
    def described(name: str | None, type_: str, *_: object) -> bool:
        # The search indexes are made by store.search, outside the metadata.
        return name is None or not is_search_object(name)

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": described})
        diff = compare_metadata(context, metadata)
    assert diff == []
    assert store_db.current_revision(engine) == store_db.head_revision()


def test_the_head_revision_is_alembics() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(store_db.MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == store_db.head_revision()


def test_upgrade_is_idempotent(db_url: str) -> None:
    engine = store_db.make_engine(db_url)
    assert store_db.upgrade(engine) is True
    assert store_db.upgrade(engine) is False
    engine.dispose()


def test_the_builtin_admin_exists_and_cannot_be_deleted_or_renamed(engine: Engine) -> None:
    [admin] = records(engine, "users")
    assert (admin["username"], admin["builtin"], admin["origin"]) == ("admin", True, None)
    with pytest.raises(ProtectedRecordError), engine.begin() as conn:
        record_store.delete_record(conn, "users", admin["id"])
    with pytest.raises(ProtectedRecordError), engine.begin() as conn:
        clean = clean_record(
            TARGETS["users"], {"username": "root"}, PhoneNormaliser(), partial=True
        )
        record_store.update_record(conn, "users", admin["id"], clean)
    assert records(engine, "users")[0]["username"] == "admin"


def test_hand_made_records_must_be_unique(engine: Engine) -> None:
    spec = TARGETS["users"]
    with engine.begin() as conn:
        record_store.insert_record(
            conn,
            "users",
            clean_record(spec, {"username": "anna", "extension": "20"}, PhoneNormaliser()),
        )
    with pytest.raises(UsageError, match="extension '20' is used"), engine.begin() as conn:
        record_store.insert_record(
            conn,
            "users",
            clean_record(spec, {"username": "berta", "extension": "20"}, PhoneNormaliser()),
        )
    with pytest.raises(UsageError, match="username 'anna'"), engine.begin() as conn:
        record_store.insert_record(
            conn, "users", clean_record(spec, {"username": "ANNA"}, PhoneNormaliser())
        )


def test_source_secrets_are_stored_encrypted(engine: Engine) -> None:
    p = Profile(
        name="p",
        template="csv-phonebook",
        target="phonebook",
        source="csv",
        mode="mirror",
        settings={"path": "/x.csv"},
        variables={},
        secrets={"smb_password": "Tr0ub4dor&3"},
    )
    with engine.begin() as conn:
        insert_profile(conn, p)
        stored = conn.execute(select(profiles.c.secrets, profiles.c.settings)).one()
        assert "Tr0ub4dor" not in stored.secrets
        assert "Tr0ub4dor" not in str(stored.settings)
        loaded = get_profile(conn, "p")
    assert loaded.secrets == {"smb_password": "Tr0ub4dor&3"}
    assert "Tr0ub4dor" not in str(loaded.public_dict())
    assert "Tr0ub4dor" not in repr(loaded)


def test_profile_not_found_names_the_profile(engine: Engine) -> None:
    with pytest.raises(NotFoundError, match="'nope'"), engine.connect() as conn:
        get_profile(conn, "nope")


def test_deleting_a_profile_keeps_its_records_unless_purged(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, [phonebook_row("A", "+49 991 1")])
    make_profile(engine, "keep", "csv-phonebook", path)
    run_profile(engine, "keep")
    with engine.begin() as conn:
        delete_profile(conn, get_profile(conn, "keep"), purge=False)
    [entry] = records(engine, "phonebook")
    assert entry["origin"] is None
    make_profile(
        engine,
        "purge",
        "csv-phonebook",
        write_csv(tmp_path / "b.csv", PHONEBOOK_HEADER, [phonebook_row("B", "+49 991 2")]),
    )
    run_profile(engine, "purge")
    with engine.begin() as conn:
        assert delete_profile(conn, get_profile(conn, "purge"), purge=True) == 1
    assert [e["displayname"] for e in records(engine, "phonebook")] == ["A"]


def test_profile_changes_are_saved(engine: Engine, tmp_path: Path) -> None:
    p = make_profile(engine, "pb", "csv-phonebook", tmp_path / "missing.csv")
    p.mode = "update"
    p.variables["notes"] = "{{ organisation }}"
    with engine.begin() as conn:
        save_profile(conn, p)
        again = get_profile(conn, "pb")
    assert again.mode == "update" and again.variables["notes"] == "{{ organisation }}"


def test_instance_settings_have_defaults_and_are_validated(engine: Engine) -> None:
    with engine.begin() as conn:
        assert get_settings(conn) == {
            "default_region": "DE",
            "outside_line_prefix": "",
            "timezone": "",
            "lookup_match": "exact",
            "lookup_suffix_digits": "8",
            "lookup_clients": "",
        }
        set_setting(conn, "default_region", "at")
        assert get_settings(conn)["default_region"] == "AT"
        with pytest.raises(UsageError):
            set_setting(conn, "default_region", "XX")
        with pytest.raises(UsageError):
            set_setting(conn, "outside_line_prefix", "a")
        set_setting(conn, "timezone", " Europe/Vienna ")
        assert get_settings(conn)["timezone"] == "Europe/Vienna"
        with pytest.raises(UsageError, match="did you mean 'Europe/Berlin'"):
            set_setting(conn, "timezone", "berlin")


def test_resolve_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(store_db.ENV_DB, "postgresql://u:p@h/db")
    assert store_db.resolve_url(None) == "postgresql+psycopg://u:p@h/db"
    assert store_db.resolve_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"
    monkeypatch.delenv(store_db.ENV_DB)
    assert store_db.resolve_url(None).endswith("/home/pbx-connector.db")
    assert "p@" not in store_db.display_url("postgresql+psycopg://u:p@h/db")
