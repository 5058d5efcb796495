"""The sync engine end to end, on SQLite and PostgreSQL: what the store holds after runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from pbx_connector.domain.passwords import verify_secret
from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import TARGETS, clean_record
from pbx_connector.store import records as record_store
from pbx_connector.store import runs as run_store
from pbx_connector.store.tables import users as users_table
from pbx_connector.sync.runner import run_profile
from tests.helpers import (
    PHONEBOOK_HEADER,
    USERS_HEADER,
    by,
    make_profile,
    phonebook_row,
    records,
    write_csv,
)


def _add_by_hand(engine: Engine, target: str, **values: str) -> int:
    with engine.begin() as conn:
        clean = clean_record(TARGETS[target], values, PhoneNormaliser("DE"))
        return record_store.insert_record(conn, target, clean)


@pytest.fixture
def pb_csv(tmp_path: Path) -> Path:
    return write_csv(
        tmp_path / "pb.csv",
        PHONEBOOK_HEADER,
        [
            phonebook_row("Max Muster", "+49 991 12345", givenname="Max", surname="Muster"),
            phonebook_row(
                "Jürgen Müller", "0991 2900-100", email="jm@example.com", mobile="0171 2345678"
            ),
            phonebook_row("Reception", "30000"),
        ],
    )


def test_first_import_creates_records_with_origin_and_e164(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    report = run_profile(engine, "pb")
    assert report["status"] == "ok"
    assert report["counts"]["created"] == 3
    entries = by(records(engine, "phonebook"), "displayname")
    assert set(entries) == {"Max Muster", "Jürgen Müller", "Reception"}
    assert entries["Max Muster"]["phone_e164"] == "+4999112345"
    assert entries["Jürgen Müller"]["mobile_e164"] == "+491712345678"
    assert entries["Reception"]["phone_e164"] is None  # an internal extension
    assert entries["Max Muster"]["origin"] == {
        "profile": "pb",
        "key": "Max Muster\x1f+49 991 12345",
    }


def test_resync_without_changes_writes_nothing(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")
    with engine.connect() as conn:
        before = {
            r.id: r.updated_at for r in conn.execute(select(record_store.table_for("phonebook")))
        }
    report = run_profile(engine, "pb")
    assert report["counts"] == {
        "created": 0,
        "updated": 0,
        "deleted": 0,
        "unchanged": 3,
        "invalid": 0,
        "conflicts": 0,
        "skipped": 0,
    }
    with engine.connect() as conn:
        after = {
            r.id: r.updated_at for r in conn.execute(select(record_store.table_for("phonebook")))
        }
    assert after == before


def test_changed_row_is_an_update_that_keeps_the_id(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "pb.csv",
        PHONEBOOK_HEADER,
        [phonebook_row("Max", "+49 991 1", organisation="Old GmbH")],
    )
    make_profile(engine, "pb", "csv-phonebook", path)
    run_profile(engine, "pb")
    old_id = records(engine, "phonebook")[0]["id"]
    write_csv(path, PHONEBOOK_HEADER, [phonebook_row("Max", "+49 991 1", organisation="New AG")])
    dry = run_profile(engine, "pb", dry_run=True)
    assert dry["counts"]["updated"] == 1
    assert dry["changes"][0]["diff"] == [
        {"field": "organisation", "before": "Old GmbH", "after": "New AG"}
    ]
    assert records(engine, "phonebook")[0]["organisation"] == "Old GmbH"
    report = run_profile(engine, "pb")
    assert report["counts"]["updated"] == 1
    [entry] = records(engine, "phonebook")
    assert entry["id"] == old_id
    assert entry["organisation"] == "New AG"


def test_mirror_deletes_what_the_source_no_longer_has_update_mode_does_not(
    engine: Engine, tmp_path: Path
) -> None:
    rows = [phonebook_row(f"Person {i}", f"+49 991 100{i:02d}") for i in range(10)]
    others = [phonebook_row(f"Other {i}", f"+49 991 200{i:02d}") for i in range(10)]
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)
    other_path = write_csv(tmp_path / "other.csv", PHONEBOOK_HEADER, others)
    make_profile(engine, "mirror", "csv-phonebook", path)
    make_profile(engine, "update", "csv-phonebook", other_path, mode="update")
    run_profile(engine, "mirror")
    run_profile(engine, "update")
    write_csv(path, PHONEBOOK_HEADER, rows[:8])
    write_csv(other_path, PHONEBOOK_HEADER, others[:8])
    report = run_profile(engine, "mirror")
    assert report["counts"]["deleted"] == 2
    deleted = sorted((c["record"], c["key"]) for c in report["changes"] if c["action"] == "delete")
    assert deleted == [
        ("Person 8", "Person 8 | +49 991 10008"),
        ("Person 9", "Person 9 | +49 991 10009"),
    ]
    assert run_profile(engine, "update")["counts"]["deleted"] == 0
    mine = [
        r["displayname"] for r in records(engine, "phonebook") if r["origin"]["profile"] == "mirror"
    ]
    assert sorted(mine) == [f"Person {i}" for i in range(8)]
    assert (
        len([r for r in records(engine, "phonebook") if r["origin"]["profile"] == "update"]) == 10
    )


def test_records_made_by_hand_are_never_deleted_or_taken_over(
    engine: Engine, tmp_path: Path
) -> None:
    hand_id = _add_by_hand(
        engine, "phonebook", displayname="Max Muster", phone="+49 991 12345", notes="by hand"
    )
    path = write_csv(
        tmp_path / "pb.csv",
        PHONEBOOK_HEADER,
        [phonebook_row("Max Muster", "+49 991 12345"), phonebook_row("Erika", "+49 991 2")],
    )
    make_profile(engine, "pb", "csv-phonebook", path)
    report = run_profile(engine, "pb")
    assert report["counts"]["conflicts"] == 1
    assert report["counts"]["created"] == 1
    [conflict] = report["errors"]
    assert conflict["kind"] == "conflict" and conflict["line"] == 2
    assert "made by hand" in conflict["message"]
    write_csv(path, PHONEBOOK_HEADER, [phonebook_row("Other", "+49 991 3")])
    run_profile(engine, "pb", force=True)
    entries = by(records(engine, "phonebook"), "id")
    assert entries[hand_id]["notes"] == "by hand"
    assert entries[hand_id]["origin"] is None


def test_users_import_hashes_passwords_and_lowercases_usernames(
    engine: Engine, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "u.csv",
        [*USERS_HEADER, "password"],
        [
            ["JDoe", "John Doe", "John", "Doe", "jd@example.com", "201", "s3cret!"],
            ["asmith", "Anna Smith", "Anna", "Smith", "", "202", ""],
        ],
    )
    make_profile(engine, "u", "csv-users", path, variables={"password": "{{ password }}"})
    report = run_profile(engine, "u")
    assert report["counts"]["created"] == 2
    assert any("stored in lower case" in w["message"] for w in report["warnings"])
    with engine.connect() as conn:
        row = conn.execute(select(users_table).where(users_table.c.username == "jdoe")).one()
    assert row.password_hash.startswith("$argon2")
    assert verify_secret(row.password_hash, "s3cret!")
    assert "s3cret!" not in repr(report)
    # Unchanged rows are not written again: the (salted) hash stays the same.
    assert run_profile(engine, "u")["counts"]["unchanged"] == 2
    with engine.connect() as conn:
        again = conn.execute(select(users_table).where(users_table.c.username == "jdoe")).one()
    assert again.password_hash == row.password_hash


def test_the_admin_user_is_never_changed_by_an_import(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "u.csv",
        USERS_HEADER,
        [
            ["admin", "Evil", "", "", "evil@example.com", "666"],
            ["bob", "Bob", "", "", "", "203"],
        ],
    )
    make_profile(engine, "u", "csv-users", path)
    report = run_profile(engine, "u")
    assert report["counts"] == {**report["counts"], "created": 1, "conflicts": 1}
    assert "built-in admin" in report["errors"][0]["message"]
    admin = by(records(engine, "users"), "username")["admin"]
    assert admin["displayname"] == "Administrator" and admin["builtin"] is True
    assert admin["extension"] is None


def test_duplicate_key_is_an_error_on_the_second_row(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "pb.csv",
        PHONEBOOK_HEADER,
        [
            phonebook_row("A", "1234567"),
            phonebook_row("B", "2345678"),
            phonebook_row("A", "1234567", notes="again"),
        ],
    )
    make_profile(engine, "pb", "csv-phonebook", path)
    report = run_profile(engine, "pb")
    assert report["counts"]["created"] == 2
    assert report["counts"]["invalid"] == 1
    assert report["errors"][0]["line"] == 4
    assert "duplicate key" in report["errors"][0]["message"]


def test_invalid_rows_are_skipped_and_reported_the_rest_applied(
    engine: Engine, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "pb.csv",
        PHONEBOOK_HEADER,
        [
            phonebook_row("", "+49 1"),
            phonebook_row("x" * 81, "+49 2"),
            phonebook_row("Bad Mail", "+49 3", email="not-an-address"),
            phonebook_row("Good", "+49 991 4"),
        ],
    )
    make_profile(engine, "pb", "csv-phonebook", path)
    report = run_profile(engine, "pb")
    assert report["status"] == "ok"
    assert report["counts"]["created"] == 1 and report["counts"]["invalid"] == 3
    errors = {(e["line"], e["field"]) for e in report["errors"]}
    assert errors == {(2, "displayname"), (3, "displayname"), (4, "email")}
    assert [r["displayname"] for r in records(engine, "phonebook")] == ["Good"]


def test_ragged_rows_are_reported_with_their_line(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "pb.csv"
    path.write_text(
        ",".join(PHONEBOOK_HEADER) + "\nA,1234567,,,,,,,\nB,2345678\nC,3456789,,,,,,,\n",
        encoding="utf-8",
    )
    make_profile(engine, "pb", "csv-phonebook", path)
    report = run_profile(engine, "pb")
    assert report["counts"]["created"] == 2
    assert report["errors"][0]["line"] == 3


def test_a_decode_error_fails_the_run_and_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "pb.csv"
    head = ",".join(PHONEBOOK_HEADER) + "\n"
    path.write_bytes(
        (head + "Good,1234567,,,,,,,\n").encode() + "Müller,2345678,,,,,,,\n".encode("cp1252")
    )
    make_profile(engine, "pb", "csv-phonebook", path)
    report = run_profile(engine, "pb")
    assert report["status"] == "failed"
    assert "nothing changed" in report["message"]
    assert "0xfc" in report["message"]
    assert report["errors"][0]["line"] == 3
    assert records(engine, "phonebook") == []


def test_a_missing_column_fails_before_reading_with_variable_and_column(
    engine: Engine, pb_csv: Path
) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv, variables={"notes": "{{ Bemerkung }}"})
    report = run_profile(engine, "pb")
    assert report["status"] == "failed"
    assert report["errors"][0]["field"] == "notes"
    assert "'Bemerkung'" in report["message"]


def test_empty_source_aborts_a_mirror_run_unless_forced(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")
    write_csv(pb_csv, PHONEBOOK_HEADER, [])
    report = run_profile(engine, "pb")
    assert report["status"] == "aborted"
    assert "no rows" in report["message"]
    assert len(records(engine, "phonebook")) == 3
    assert run_profile(engine, "pb", force=True)["counts"]["deleted"] == 3
    assert records(engine, "phonebook") == []


def test_max_delete_aborts_a_run_that_would_delete_too_much(engine: Engine, tmp_path: Path) -> None:
    rows = [phonebook_row(f"P{i}", f"+49 991 55{i:03d}") for i in range(100)]
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)
    make_profile(engine, "pb", "csv-phonebook", path)
    run_profile(engine, "pb")
    write_csv(path, PHONEBOOK_HEADER, rows[:89])  # 11 deletions > 10% of 100
    report = run_profile(engine, "pb")
    assert report["status"] == "aborted"
    assert "11 of 100" in report["message"]
    assert len(records(engine, "phonebook")) == 100
    write_csv(path, PHONEBOOK_HEADER, rows[:90])  # exactly 10: allowed
    assert run_profile(engine, "pb")["counts"]["deleted"] == 10


def test_at_least_five_deletions_are_allowed_for_small_profiles(
    engine: Engine, tmp_path: Path
) -> None:
    rows = [phonebook_row(f"P{i}", f"+49 991 55{i:03d}") for i in range(8)]
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)
    make_profile(engine, "pb", "csv-phonebook", path)
    run_profile(engine, "pb")
    write_csv(path, PHONEBOOK_HEADER, rows[:3])
    assert run_profile(engine, "pb")["counts"]["deleted"] == 5


def test_a_second_run_of_a_profile_is_refused_while_one_runs(engine: Engine, pb_csv: Path) -> None:
    profile = make_profile(engine, "pb", "csv-phonebook", pb_csv)
    assert profile.id is not None
    # Hold the lock as a live process (this one) would.
    holder = run_store.begin_run(engine, profile.id, "pb", dry_run=False, trigger="test")
    report = run_profile(engine, "pb")
    assert report["status"] == "failed"
    assert f"already running (run {holder}" in report["message"]
    assert records(engine, "phonebook") == []
    with engine.begin() as conn:
        run_store.end_run(conn, profile.id, holder, {**report, "status": "ok"})
    assert run_profile(engine, "pb")["status"] == "ok"


def test_a_lock_left_by_a_dead_process_is_taken_over(engine: Engine, pb_csv: Path) -> None:
    import socket
    from datetime import UTC, datetime

    from sqlalchemy import delete, insert

    from pbx_connector.store.tables import run_locks

    profile = make_profile(engine, "pb", "csv-phonebook", pb_csv)
    dead_pid = 2**22 + 12345  # above pid_max defaults: no such process
    # Run 1 was started by a process that is gone.
    run_id = run_store.begin_run(engine, profile.id, "pb", dry_run=False, trigger="test")
    assert run_id == 1
    with engine.begin() as conn:
        conn.execute(delete(run_locks))
        conn.execute(
            insert(run_locks).values(
                profile_id=profile.id,
                run_id=1,
                pid=dead_pid,
                host=socket.gethostname(),
                acquired_at=datetime.now(UTC),
            )
        )
    assert run_profile(engine, "pb")["status"] == "ok"
    assert os.getpid() != dead_pid
    with engine.connect() as conn:
        assert run_store.get_run(conn, 1)["status"] == "interrupted"


def test_every_run_is_recorded(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb", dry_run=True)
    run_profile(engine, "pb")
    pb_csv.write_bytes(b"\xff\xfe\x00garbage")
    run_profile(engine, "pb")
    with engine.connect() as conn:
        history = run_store.list_runs(conn, "pb")
    assert [(r["dry_run"], r["status"]) for r in history] == [
        (False, "failed"),
        (False, "ok"),
        (True, "ok"),
    ]
    assert all(r["finished"] for r in history)


def test_hand_edits_of_imported_records_are_restored_by_the_next_run(
    engine: Engine, pb_csv: Path
) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")
    entry = by(records(engine, "phonebook"), "displayname")["Max Muster"]
    with engine.begin() as conn:
        clean = clean_record(
            TARGETS["phonebook"], {"givenname": "Maximilian"}, PhoneNormaliser("DE"), partial=True
        )
        record_store.update_record(conn, "phonebook", entry["id"], clean)
    report = run_profile(engine, "pb")
    assert report["counts"]["updated"] == 1
    assert by(records(engine, "phonebook"), "id")[entry["id"]]["givenname"] == "Max"


def test_fields_without_a_variable_are_left_alone_on_update(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "u.csv", USERS_HEADER, [["carl", "Carl", "", "", "", "301"]])
    make_profile(engine, "u", "csv-users", path)
    run_profile(engine, "u")
    carl = by(records(engine, "users"), "username")["carl"]
    assert carl["auth"] == "internal"
    with engine.begin() as conn:
        clean = clean_record(
            TARGETS["users"], {"auth": "ldap"}, PhoneNormaliser("DE"), partial=True
        )
        record_store.update_record(conn, "users", carl["id"], clean)
    write_csv(path, USERS_HEADER, [["carl", "Carl Meier", "", "", "", "301"]])
    run_profile(engine, "u")
    carl = by(records(engine, "users"), "username")["carl"]
    assert (carl["displayname"], carl["auth"]) == ("Carl Meier", "ldap")


def test_users_may_swap_extensions_in_one_run(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "u.csv",
        USERS_HEADER,
        [["a", "A", "", "", "", "10"], ["b", "B", "", "", "", "11"]],
    )
    make_profile(engine, "u", "csv-users", path)
    run_profile(engine, "u")
    write_csv(path, USERS_HEADER, [["a", "A", "", "", "", "11"], ["b", "B", "", "", "", "10"]])
    report = run_profile(engine, "u")
    assert report["status"] == "ok" and report["counts"]["updated"] == 2
    users = by(records(engine, "users"), "username")
    assert (users["a"]["extension"], users["b"]["extension"]) == ("11", "10")


def test_two_rows_may_not_claim_one_extension(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "u.csv",
        USERS_HEADER,
        [["a", "A", "", "", "", "10"], ["b", "B", "", "", "", "10"]],
    )
    make_profile(engine, "u", "csv-users", path)
    report = run_profile(engine, "u")
    assert report["status"] == "ok"
    assert report["counts"]["created"] == 1 and report["counts"]["conflicts"] == 1
    assert report["errors"][0]["line"] == 3 and report["errors"][0]["field"] == "extension"


def test_speeddial_codes_of_another_profile_are_conflicts(engine: Engine, tmp_path: Path) -> None:
    header = ["code", "number", "displayname"]
    one = write_csv(tmp_path / "one.csv", header, [["*11", "+49 991 1", "Pizza"]])
    two = write_csv(
        tmp_path / "two.csv", header, [["*11", "+49 991 2", "Taxi"], ["*12", "+49 991 3", "Doctor"]]
    )
    make_profile(engine, "one", "csv-speeddials", one)
    make_profile(engine, "two", "csv-speeddials", two)
    run_profile(engine, "one")
    report = run_profile(engine, "two")
    assert report["counts"]["created"] == 1 and report["counts"]["conflicts"] == 1
    assert "profile 'one'" in report["errors"][0]["message"]
    codes = by(records(engine, "speeddials"), "code")
    assert codes["*11"]["displayname"] == "Pizza"
    assert codes["*12"]["number_e164"] == "+499913"


def test_private_phonebook_entries_need_an_existing_owner(engine: Engine, tmp_path: Path) -> None:
    _add_by_hand(engine, "users", username="jdoe")
    path = write_csv(
        tmp_path / "pb.csv",
        [*PHONEBOOK_HEADER, "owner"],
        [
            [*phonebook_row("Mum", "+49 991 7"), "JDoe"],
            [*phonebook_row("Ghost", "+49 991 8"), "nobody"],
            [*phonebook_row("Global", "+49 991 9"), ""],
        ],
    )
    make_profile(engine, "pb", "csv-phonebook", path, variables={"owner": "{{ owner }}"})
    report = run_profile(engine, "pb")
    assert report["counts"]["created"] == 2 and report["counts"]["invalid"] == 1
    assert report["errors"][0]["field"] == "owner"
    with engine.connect() as conn:
        private = record_store.list_records(conn, "phonebook", owner="jdoe")
        public = record_store.list_records(conn, "phonebook", owner="")
    assert [e["displayname"] for e in private] == ["Mum"]
    assert [e["displayname"] for e in public] == ["Global"]


def test_prefilter_skips_rows(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv, prefilter='phone.startswith("+")')
    report = run_profile(engine, "pb")
    assert report["counts"]["created"] == 1 and report["counts"]["skipped"] == 2


def test_an_invalid_row_does_not_delete_the_record_it_used_to_be(
    engine: Engine, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "u.csv", USERS_HEADER, [["dora", "Dora", "", "", "", "40"]])
    make_profile(engine, "u", "csv-users", path)
    run_profile(engine, "u")
    write_csv(path, USERS_HEADER, [["dora", "Dora", "", "", "broken-mail", "40"]])
    report = run_profile(engine, "u")
    assert report["counts"]["invalid"] == 1 and report["counts"]["deleted"] == 0
    assert "dora" in by(records(engine, "users"), "username")


def test_a_ragged_row_does_not_delete_the_record_it_used_to_be(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "pb.csv"
    header = ",".join(PHONEBOOK_HEADER)
    path.write_text(f"{header}\nA,1234567,,,,,,,\nB,2345678,,,,,,,\n", encoding="utf-8")
    make_profile(engine, "pb", "csv-phonebook", path)
    run_profile(engine, "pb")
    # B's line loses its columns: its key cannot be read, so B must not look deleted.
    path.write_text(f"{header}\nA,1234567,,,,,,,\nB,2345678\n", encoding="utf-8")
    report = run_profile(engine, "pb")
    assert report["counts"]["invalid"] == 1 and report["counts"]["deleted"] == 0
    assert {"A", "B"} == set(by(records(engine, "phonebook"), "displayname"))
    assert "cannot be told apart" in report["warnings"][0]["message"]
    # Once the file is right again, a row that is really gone is deleted.
    path.write_text(f"{header}\nA,1234567,,,,,,,\n", encoding="utf-8")
    assert run_profile(engine, "pb")["counts"]["deleted"] == 1
