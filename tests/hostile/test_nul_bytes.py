"""Hostile values on both stores: NUL bytes and other control characters in a field, and
ids or limits too large for any database integer.

PostgreSQL cannot store a NUL in text; SQLite can. Either way a NUL (or another control
character) in a field is an invalid row with its line and field, never a failed run and
never a value that one store keeps and the other refuses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import TARGETS, clean_record
from pbx_connector.errors import NotFoundError, RecordError, UsageError
from pbx_connector.store import records as record_store
from pbx_connector.sync.runner import run_profile
from tests.helpers import PHONEBOOK_HEADER, USERS_HEADER, make_profile, records


def _csv(path: Path, header: list[str], lines: list[str]) -> Path:
    """Raw lines, so that the control characters reach the source as they are."""
    path.write_bytes(("\n".join([",".join(header), *lines]) + "\n").encode("utf-8"))
    return path


def _invalid(report: dict[str, object]) -> dict[int, str]:
    errors = report["errors"]
    assert isinstance(errors, list)
    return {e["line"]: e["field"] for e in errors if e["kind"] == "invalid"}


def test_nul_bytes_in_a_phonebook_csv_are_invalid_rows_on_both_stores(
    engine: Engine, tmp_path: Path
) -> None:
    path = _csv(
        tmp_path / "pb.csv",
        PHONEBOOK_HEADER,
        [
            "Good,+49 991 1,,,,,,,",
            "Bad\x00Name,+49 991 2,,,,,,,",
            "Mail,+49 991 3,,,,x\x00y@example.com,,,",
            "Number,+49 991 4\x00,,,,,,,",
            "Bell,+49 991 5,,,Acme\x07 AG,,,,",
            "Tab,+49 991 6,,,Acme\tAG,,,,",
            "Last,+49 991 7,,,,,,,",
        ],
    )
    make_profile(engine, "pb", "csv-phonebook", path)
    report = run_profile(engine, "pb")
    assert report["status"] == "ok", report
    assert report["counts"]["created"] == 3
    assert report["counts"]["invalid"] == 4
    assert _invalid(report) == {3: "displayname", 4: "email", 5: "phone", 6: "organisation"}
    messages = [e["message"] for e in report["errors"]]
    assert "contains a control character (U+0000) at character 4" in messages[0]
    assert "U+0007" in messages[3]
    stored = {r["displayname"]: r for r in records(engine, "phonebook")}
    assert set(stored) == {"Good", "Tab", "Last"}
    assert stored["Tab"]["organisation"] == "Acme\tAG"  # a tab is kept
    # The next run reports the same rows again and changes nothing.
    again = run_profile(engine, "pb")
    assert again["status"] == "ok"
    assert (again["counts"]["unchanged"], again["counts"]["invalid"]) == (3, 4)


def test_nul_bytes_in_a_users_csv_are_invalid_rows_on_both_stores(
    engine: Engine, tmp_path: Path
) -> None:
    path = _csv(
        tmp_path / "u.csv",
        USERS_HEADER,
        [
            "anna,Anna,,,anna@example.com,10",
            "bert\x00,Bert,,,,11",
            "carl,Carl\x00Carlsen,,,,12",
            "dora,Dora,,,,1\x003",
            "fritz,Fritz,,,,15",
        ],
    )
    make_profile(engine, "u", "csv-users", path)
    report = run_profile(engine, "u")
    assert report["status"] == "ok", report
    assert _invalid(report) == {3: "username", 4: "displayname", 5: "extension"}
    assert report["counts"]["created"] == 2
    names = {r["username"] for r in records(engine, "users")}
    assert names == {"admin", "anna", "fritz"}


def test_a_quoted_line_break_is_kept_in_notes_and_refused_in_a_name(
    engine: Engine, tmp_path: Path
) -> None:
    header = [*PHONEBOOK_HEADER, "notes"]
    path = _csv(
        tmp_path / "pb.csv",
        header,
        [
            'Multi,+49 991 1,,,,,,,,"first line\nsecond line"',
            '"Two\nLines",+49 991 2,,,,,,,,',
        ],
    )
    make_profile(engine, "pb", "csv-phonebook", path, variables={"notes": "{{ notes }}"})
    report = run_profile(engine, "pb")
    assert report["status"] == "ok", report
    assert _invalid(report) == {4: "displayname"}
    assert "a line break (U+000A)" in report["errors"][0]["message"]
    [entry] = records(engine, "phonebook")
    assert entry["notes"] == "first line\nsecond line"


# --- by hand -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "values", "field"),
    [
        ("users", {"username": "nul\x00"}, "username"),
        ("users", {"username": "ok", "displayname": "A\x00B"}, "displayname"),
        ("users", {"username": "ok", "password": "secret\x00"}, "password"),
        ("phonebook", {"displayname": "A\x00B"}, "displayname"),
        ("phonebook", {"displayname": "A", "notes": "x\x00y"}, "notes"),
        ("speeddials", {"code": "1", "number": "+49 991 1\x1b"}, "number"),
    ],
)
def test_hand_made_records_with_control_characters_are_refused_naming_the_field(
    engine: Engine, target: str, values: dict[str, str], field: str
) -> None:
    with pytest.raises(RecordError) as info:
        clean_record(TARGETS[target], values, PhoneNormaliser("DE"))
    assert info.value.field == field
    assert "secret" not in str(info.value)  # the value itself is not repeated
    assert records(engine, target) == [r for r in records(engine, target) if r.get("builtin")]


# --- ids and limits no database integer holds -------------------------------------------------

HUGE = [2**63, 2**63 + 1, 10**30]


@pytest.mark.parametrize("record_id", [*HUGE, 2**63 - 1, 2**31, 0, -1, -(2**63) - 1])
def test_ids_out_of_range_are_not_found_on_both_stores(engine: Engine, record_id: int) -> None:
    spec = TARGETS["phonebook"]
    clean = clean_record(spec, {"displayname": "X"}, PhoneNormaliser("DE"), partial=True)
    for action in (
        lambda conn: record_store.get_record(conn, "phonebook", record_id),
        lambda conn: record_store.update_record(conn, "phonebook", record_id, clean),
        lambda conn: record_store.delete_record(conn, "users", record_id),
    ):
        with pytest.raises(NotFoundError, match=f"with id {record_id}$"), engine.begin() as conn:
            action(conn)


@pytest.mark.parametrize("limit", [*HUGE, -1])
def test_limits_out_of_range_are_refused_on_both_stores(engine: Engine, limit: int) -> None:
    with pytest.raises(UsageError) as info, engine.connect() as conn:
        record_store.list_records(conn, "users", limit=limit)
    assert info.value.field == "limit"
    assert not isinstance(info.value, NotFoundError)


def test_the_largest_limit_lists_everything(engine: Engine) -> None:
    with engine.connect() as conn:
        assert len(record_store.list_records(conn, "users", limit=2**63 - 1)) == 1
        assert record_store.list_records(conn, "users", limit=0) == []
