"""Usernames that pass for others, on both stores: compatibility forms (`ａｄｍｉｎ`), mixed
scripts (`аdmin` with a Cyrillic `а`), whole-script look-alikes (`ѕсоре`), two names with
one skeleton, and two writers adding the same name at the same moment."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import TARGETS, clean_record
from pbx_connector.errors import PbxConnectorError, RecordError, UsageError
from pbx_connector.store import db as store_db
from pbx_connector.store import records as record_store
from pbx_connector.store.tables import users as users_table
from pbx_connector.sync.runner import run_profile
from tests.helpers import USERS_HEADER, make_profile, records, write_csv

USERS = TARGETS["users"]


def _user(**values: str) -> Any:
    return clean_record(USERS, values, PhoneNormaliser("DE"))


def _add(engine: Engine, **values: str) -> int:
    with engine.begin() as conn:
        return record_store.insert_record(conn, "users", _user(**values))


def _names(engine: Engine) -> set[str]:
    return {r["username"] for r in records(engine, "users")}


def _row(name: str, extension: str = "") -> list[str]:
    values = {"username": name, "displayname": name, "extension": extension}
    return [values.get(h, "") for h in USERS_HEADER]


# --- imports ---------------------------------------------------------------------------------


def test_a_csv_cannot_create_look_alikes_of_existing_users(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "u.csv",
        USERS_HEADER,
        [
            _row("ｃａｒｏｌ"),  # fullwidth: stored as plain "carol", with a warning
            _row("ａｄｍｉｎ"),  # fullwidth admin: the built-in admin's name
            _row("аdmin"),  # Cyrillic а + Latin dmin
            _row("ѕсоре"),  # all Cyrillic, looks exactly like "scope"
            _row("Ｃarol"),  # carol again, in another spelling
            _row("иван"),  # a Cyrillic name that passes for no ASCII one
            _row("dave"),
        ],
    )
    make_profile(engine, "u", "csv-users", path)
    report = run_profile(engine, "u")
    assert report["status"] == "ok", report
    assert report["counts"]["created"] == 3
    problems = {e["line"]: e for e in report["errors"]}
    assert {line: e["field"] for line, e in problems.items()} == {
        3: "username",
        4: "username",
        5: "username",
        6: "username",
    }
    assert problems[3]["kind"] == "conflict"
    assert "built-in admin" in problems[3]["message"]
    assert problems[4]["kind"] == "invalid"
    assert "mixes letters of several scripts" in problems[4]["message"]
    assert "Cyrillic 'а' (U+0430)" in problems[4]["message"]
    assert problems[5]["kind"] == "invalid"
    assert "looks like the name 'scope'" in problems[5]["message"]
    assert problems[6]["kind"] == "conflict"
    assert "username 'carol'" in problems[6]["message"]
    assert _names(engine) == {"admin", "carol", "иван", "dave"}
    warnings = {(w["line"], w["field"]): w["message"] for w in report["warnings"]}
    assert warnings[(2, "username")] == "'ｃａｒｏｌ' stored in its plain form as 'carol'"


def test_a_csv_name_with_the_skeleton_of_a_hand_made_user_is_a_conflict(
    engine: Engine, tmp_path: Path
) -> None:
    hand = _add(engine, username="үи")  # Cyrillic straight ue
    path = write_csv(tmp_path / "u.csv", USERS_HEADER, [_row("уи"), _row("ok")])  # Cyrillic u
    make_profile(engine, "u", "csv-users", path)
    report = run_profile(engine, "u")
    assert report["status"] == "ok"
    [error] = report["errors"]
    assert (error["kind"], error["line"], error["field"]) == ("conflict", 2, "username")
    assert error["message"] == (
        f"a username that looks like 'yи' belongs to user {hand}, made by hand"
    )
    assert _names(engine) == {"admin", "үи", "ok"}


# --- by hand ---------------------------------------------------------------------------------


def test_hand_made_users_get_the_canonical_name(engine: Engine) -> None:
    _add(engine, username="Ｃａｒｏｌ")
    assert "carol" in _names(engine)
    with pytest.raises(UsageError, match="username 'admin' is used by user"):
        _add(engine, username="ａｄｍｉｎ")
    with pytest.raises(RecordError) as info:
        _add(engine, username="аdmin")
    assert info.value.field == "username"
    assert "mixes letters of several scripts" in info.value.message


def test_a_hand_made_user_may_not_look_like_another(engine: Engine) -> None:
    first = _add(engine, username="үи")
    with pytest.raises(UsageError) as info:
        _add(engine, username="уи")
    assert info.value.field == "username"
    assert info.value.message == (
        f"username 'уи' looks like 'үи', the username of user {first}: one could pass for the other"
    )
    other = _add(engine, username="ив")
    rename = clean_record(USERS, {"username": "уи"}, PhoneNormaliser(), partial=True)
    with pytest.raises(UsageError, match="looks like 'үи'"), engine.begin() as conn:
        record_store.update_record(conn, "users", other, rename)
    # Renaming a user to a look-alike of itself is no clash.
    same = clean_record(USERS, {"username": "уи"}, PhoneNormaliser(), partial=True)
    with engine.begin() as conn:
        record_store.update_record(conn, "users", first, same)
    assert _names(engine) == {"admin", "уи", "ив"}


def test_a_look_alike_stored_before_the_rule_can_still_be_edited(engine: Engine) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        legacy = conn.execute(
            insert(users_table).values(
                username="аdmin", displayname="", givenname="", surname="", email="",
                phone="", mobile="", homephone="", fax="", organisation="", job="",
                auth="internal", roles=[], enabled=True, builtin=False,
                created_at=now, updated_at=now,
            )
        ).inserted_primary_key[0]  # fmt: skip
    edit = clean_record(USERS, {"displayname": "Legacy"}, PhoneNormaliser(), partial=True)
    with engine.begin() as conn:
        record_store.update_record(conn, "users", legacy, edit)
    assert {r["displayname"] for r in records(engine, "users")} >= {"Legacy"}


# --- two writers at the same moment ----------------------------------------------------------


def _insert_slowly(
    db_url: str, values: dict[str, str], started: Any, hold: float, out: Any
) -> None:
    """Insert a user and keep the transaction open for `hold` seconds (first writer), or
    wait until the first writer has inserted and then insert (second writer)."""
    engine = store_db.make_engine(db_url)
    try:
        if hold == 0:
            started.wait(30)
        with engine.begin() as conn:
            record_id = record_store.insert_record(conn, "users", _user(**values))
            if hold:
                started.set()
                # The second writer checks now, finds nothing (this is not committed),
                # and inserts: the unique index refuses it when this commits.
                import time

                time.sleep(hold)
        out.put(("ok", record_id, ""))
    except PbxConnectorError as exc:
        out.put((type(exc).__name__, exc.field, exc.message))
    except Exception as exc:  # what the test must never see
        out.put(("crash", type(exc).__name__, str(exc)))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("first", "second", "field", "value"),
    [
        ({"username": "zoe"}, {"username": "zoe"}, "username", "zoe"),
        ({"username": "zoe", "extension": "77"}, {"username": "yves", "extension": "77"},
         "extension", "77"),
    ],
)  # fmt: skip
def test_two_processes_adding_the_same_name_one_gets_a_clear_error(
    engine: Engine,
    db_url: str,
    first: dict[str, str],
    second: dict[str, str],
    field: str,
    value: str,
) -> None:
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Event()
    out = ctx.Queue()
    procs = [
        ctx.Process(target=_insert_slowly, args=(db_url, first, started, 1.5, out)),
        ctx.Process(target=_insert_slowly, args=(db_url, second, started, 0, out)),
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    outcomes = sorted(results, key=lambda r: r[0] != "ok")
    assert outcomes[0][0] == "ok", results
    assert outcomes[1][:2] == ("ConflictError", field), results
    assert outcomes[1][2] == (
        f"{field} {value!r} is already used by another user (saved at the same moment)"
    )
    assert _names(engine) == {"admin", "zoe"}


def _cli(db_url: str, *args: str) -> Callable[[], subprocess.Popen[str]]:
    code = "from pbx_connector.cli import main; main()"
    return lambda: subprocess.Popen(
        [sys.executable, "-c", code, "--db", db_url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_parallel_users_add_commands_never_end_in_a_traceback(engine: Engine, db_url: str) -> None:
    starts = [_cli(db_url, "users", "add", "username=Same", f"displayname=P{i}") for i in range(4)]
    procs = [start() for start in starts]
    results = [(p.wait(60), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2, 2, 2], results
    for code, _out, err in results:
        assert "Traceback" not in err
        if code == 2:
            assert err.startswith("error: "), err
            assert "'same'" in err
    assert _names(engine) == {"admin", "same"}
