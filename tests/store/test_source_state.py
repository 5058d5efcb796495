"""A source's state between runs: kept per profile and name, replaced, and gone with the
profile."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from pbx_connector.service import App
from pbx_connector.store.source_state import clear_state, get_state, set_state


def test_state_is_kept_replaced_and_deleted_with_its_profile(
    engine: Engine, tmp_path: Path
) -> None:
    app = App(engine)
    path = tmp_path / "pb.csv"
    path.write_text("displayname,phone\nA,+49 991 1\n", encoding="utf-8")
    profile = app.profiles.create("pb", "csv-phonebook", settings={"path": str(path)}).profile
    with engine.begin() as conn:
        assert get_state(conn, profile.id, "http") is None
        set_state(conn, profile.id, "http", {"etag": '"a"'})
        set_state(conn, profile.id, "http", {"etag": '"b"'})
        set_state(conn, profile.id, "upload", {"size": 3})
        assert get_state(conn, profile.id, "http") == {"etag": '"b"'}
        clear_state(conn, profile.id, "upload")
        assert get_state(conn, profile.id, "upload") is None
    app.profiles.delete("pb")
    with engine.begin() as conn:
        assert get_state(conn, profile.id, "http") is None
