"""An import may neither grant nor remove the roles that open the API and the admin
pages (admin, viewer): an administrator gives them by hand."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, update

from pbx_connector.store.tables import users
from pbx_connector.sync.runner import run_profile
from tests.helpers import USERS_HEADER, make_profile, records, write_csv


def _csv(path: Path, roles: dict[str, str]) -> Path:
    header = [*USERS_HEADER, "roles"]
    return write_csv(path, header, [[u, u.title(), "", "", "", "", r] for u, r in roles.items()])


def test_a_row_that_asks_for_admin_or_viewer_is_invalid(engine: Engine, tmp_path: Path) -> None:
    path = _csv(tmp_path / "u.csv", {"anna": "sales", "bert": "sales, admin", "cleo": "viewer"})
    make_profile(engine, "u", "csv-users", path, variables={"roles": "{{ roles }}"})
    report = run_profile(engine, "u")
    assert report["counts"]["created"] == 1 and report["counts"]["invalid"] == 2
    assert {(e["line"], e["field"]) for e in report["errors"]} == {(3, "roles"), (4, "roles")}
    assert "may not grant the role 'admin'" in report["errors"][0]["message"]
    assert [u["username"] for u in records(engine, "users") if not u["builtin"]] == ["anna"]


def test_roles_given_by_hand_survive_the_next_import(engine: Engine, tmp_path: Path) -> None:
    path = _csv(tmp_path / "u.csv", {"anna": "sales"})
    make_profile(engine, "u", "csv-users", path, variables={"roles": "{{ roles }}"})
    run_profile(engine, "u")
    with engine.begin() as conn:
        # The administrator makes anna an admin by hand (a hand edit clears the hash).
        conn.execute(
            update(users)
            .where(users.c.username == "anna")
            .values(roles=["admin", "sales"], content_hash=None)
        )
    _csv(path, {"anna": "support"})
    assert run_profile(engine, "u")["counts"]["updated"] == 1
    (anna,) = [u for u in records(engine, "users") if u["username"] == "anna"]
    assert anna["roles"] == ["admin", "support"]
