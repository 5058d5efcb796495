"""Source row digests, on SQLite and PostgreSQL: a re-sync leaves a record alone when the
row it was made from comes again unchanged, and maps the row again whenever anything
that decides what it becomes has changed (mapping, settings, phone rules, a forced run),
or the record was edited by hand. What the store holds after each run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import TARGETS, clean_record
from pbx_connector.sources.base import SourceRow
from pbx_connector.store import records as record_store
from pbx_connector.store.profiles import get_profile, save_profile
from pbx_connector.store.secrets import hash_key
from pbx_connector.store.settings import set_setting
from pbx_connector.sync.plan import PlanInput, SourceDigests, build_plan
from pbx_connector.sync.runner import run_profile
from tests.helpers import PHONEBOOK_HEADER, by, make_profile, phonebook_row, records, write_csv

ROWS = [
    phonebook_row("Max Muster", "+49 991 12345", organisation="Muster GmbH"),
    phonebook_row("Jürgen Müller", "0991 2900-100", mobile="0171 2345678"),
    phonebook_row("Reception", "30000"),
]


def _stored(engine: Engine) -> dict[str, dict[str, Any]]:
    """displayname -> the system columns of each phonebook record."""
    table = record_store.table_for("phonebook")
    query = select(
        table.c.displayname,
        table.c.id,
        table.c.content_hash,
        table.c.source_hash,
        table.c.updated_at,
    )
    with engine.connect() as conn:
        return {r.displayname: dict(r._mapping) for r in conn.execute(query)}


def _forget_digests(engine: Engine) -> None:
    """What the store holds for records written before source digests existed."""
    with engine.begin() as conn:
        conn.execute(update(record_store.table_for("phonebook")).values(source_hash=None))


def _edit_profile(engine: Engine, name: str, change: Callable[[Any], None]) -> None:
    with engine.begin() as conn:
        profile = get_profile(conn, name)
        change(profile)
        save_profile(conn, profile)


@pytest.fixture
def pb_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, ROWS)


def test_every_written_record_keeps_its_rows_digest_and_a_resync_keeps_them(
    engine: Engine, pb_csv: Path
) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    assert run_profile(engine, "pb")["counts"]["created"] == 3
    first = _stored(engine)
    assert all(len(r["source_hash"] or "") == 32 for r in first.values())
    assert len({r["source_hash"] for r in first.values()}) == 3
    report = run_profile(engine, "pb")
    assert report["counts"]["unchanged"] == 3
    assert report["counts"]["updated"] == report["counts"]["created"] == 0
    assert _stored(engine) == first


def test_records_without_a_digest_get_one_without_being_written(
    engine: Engine, pb_csv: Path
) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")
    first = _stored(engine)
    _forget_digests(engine)
    dry = run_profile(engine, "pb", dry_run=True)
    assert dry["counts"]["unchanged"] == 3
    assert all(r["source_hash"] is None for r in _stored(engine).values())  # a dry run
    report = run_profile(engine, "pb")
    assert report["counts"]["unchanged"] == 3
    assert report["counts"]["updated"] == 0
    assert _stored(engine) == first  # the same digests, values and updated_at


def test_a_changed_row_is_updated_and_its_new_digest_kept(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")
    first = _stored(engine)
    rows = [ROWS[0], phonebook_row("Jürgen Müller", "0991 2900-100", mobile="0171 999"), ROWS[2]]
    write_csv(pb_csv, PHONEBOOK_HEADER, rows)
    report = run_profile(engine, "pb")
    assert (report["counts"]["updated"], report["counts"]["unchanged"]) == (1, 2)
    after = _stored(engine)
    assert after["Jürgen Müller"]["source_hash"] != first["Jürgen Müller"]["source_hash"]
    assert after["Max Muster"] == first["Max Muster"]
    assert by(records(engine, "phonebook"), "displayname")["Jürgen Müller"]["mobile"] == "0171 999"


def test_a_changed_variable_maps_every_row_again(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")
    first = _stored(engine)

    def upper(profile: Any) -> None:
        profile.variables["organisation"] = "{{ organisation | upper }}"

    _edit_profile(engine, "pb", upper)
    report = run_profile(engine, "pb")
    # Only Max has an organisation: the others map to what they were, with new digests.
    assert (report["counts"]["updated"], report["counts"]["unchanged"]) == (1, 2)
    entries = by(records(engine, "phonebook"), "displayname")
    assert entries["Max Muster"]["organisation"] == "MUSTER GMBH"
    after = _stored(engine)
    assert all(after[n]["source_hash"] != first[n]["source_hash"] for n in first)
    assert after["Reception"]["updated_at"] == first["Reception"]["updated_at"]
    assert run_profile(engine, "pb")["counts"]["unchanged"] == 3


def test_a_changed_prefilter_maps_every_row_again(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv, mode="mirror")
    run_profile(engine, "pb")

    def only_people(profile: Any) -> None:
        profile.prefilter = 'displayname != "Reception"'

    _edit_profile(engine, "pb", only_people)
    report = run_profile(engine, "pb")
    assert (report["counts"]["skipped"], report["counts"]["deleted"]) == (1, 1)
    assert "Reception" not in by(records(engine, "phonebook"), "displayname")


def test_a_changed_profile_setting_maps_every_row_again(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")

    def austria(profile: Any) -> None:
        profile.settings["region"] = "AT"

    _edit_profile(engine, "pb", austria)
    report = run_profile(engine, "pb")
    assert report["counts"]["updated"] == 3  # the phone rules are in the content hash too
    entries = by(records(engine, "phonebook"), "displayname")
    assert entries["Jürgen Müller"]["phone_e164"] == "+439912900100"
    assert entries["Max Muster"]["phone_e164"] == "+4999112345"


def test_a_changed_source_setting_gives_every_row_a_new_digest(
    engine: Engine, pb_csv: Path
) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")
    first = _stored(engine)

    def another_encoding(profile: Any) -> None:
        profile.settings["encoding"] = "utf-8-sig"

    _edit_profile(engine, "pb", another_encoding)
    assert run_profile(engine, "pb")["counts"]["unchanged"] == 3
    after = _stored(engine)
    assert all(after[n]["source_hash"] != first[n]["source_hash"] for n in first)
    assert all(after[n]["updated_at"] == first[n]["updated_at"] for n in first)


def test_the_schedule_and_the_delete_limit_keep_the_digests(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")
    first = _stored(engine)

    def reschedule(profile: Any) -> None:
        profile.settings.update(schedule="0 * * * *", max_delete="50%")

    _edit_profile(engine, "pb", reschedule)
    assert run_profile(engine, "pb")["counts"]["unchanged"] == 3
    assert _stored(engine) == first


def test_changed_instance_phone_rules_map_every_row_again(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")
    with engine.begin() as conn:
        set_setting(conn, "default_region", "AT")
    report = run_profile(engine, "pb")
    assert report["counts"]["updated"] == 3
    entries = by(records(engine, "phonebook"), "displayname")
    assert entries["Jürgen Müller"]["phone_e164"] == "+439912900100"


def test_a_hand_edit_drops_the_digest_and_the_next_run_restores_the_record(
    engine: Engine, pb_csv: Path
) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")
    first = _stored(engine)
    max_id = first["Max Muster"]["id"]
    with engine.begin() as conn:
        clean = clean_record(
            TARGETS["phonebook"], {"organisation": "Hand AG"}, PhoneNormaliser("DE"), partial=True
        )
        record_store.update_record(conn, "phonebook", max_id, clean)
    edited = _stored(engine)["Max Muster"]
    assert edited["content_hash"] is None and edited["source_hash"] is None
    report = run_profile(engine, "pb")
    assert (report["counts"]["updated"], report["counts"]["unchanged"]) == (1, 2)
    assert by(records(engine, "phonebook"), "id")[max_id]["organisation"] == "Muster GmbH"
    assert _stored(engine)["Max Muster"]["source_hash"] == first["Max Muster"]["source_hash"]


def test_a_content_hash_cleared_alone_still_restores_the_record(
    engine: Engine, pb_csv: Path
) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")
    table = record_store.table_for("phonebook")
    with engine.begin() as conn:
        conn.execute(
            update(table)
            .where(table.c.displayname == "Reception")
            .values(organisation="by hand", content_hash=None)
        )
    assert run_profile(engine, "pb")["counts"]["updated"] == 1
    assert by(records(engine, "phonebook"), "displayname")["Reception"]["organisation"] == ""


def test_a_forced_run_maps_every_row_even_with_its_digest_stored(
    engine: Engine, pb_csv: Path
) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")
    first = _stored(engine)
    table = record_store.table_for("phonebook")
    with engine.begin() as conn:
        # A record whose content hash no longer fits its values, its digest kept.
        conn.execute(
            update(table)
            .where(table.c.displayname == "Max Muster")
            .values(organisation="Stale", content_hash="0" * 32)
        )
    assert run_profile(engine, "pb")["counts"]["unchanged"] == 3  # left alone
    assert by(records(engine, "phonebook"), "displayname")["Max Muster"]["organisation"] == "Stale"
    report = run_profile(engine, "pb", force=True)
    assert (report["counts"]["updated"], report["counts"]["unchanged"]) == (1, 2)
    entries = by(records(engine, "phonebook"), "displayname")
    assert entries["Max Muster"]["organisation"] == "Muster GmbH"
    assert _stored(engine)["Max Muster"]["source_hash"] == first["Max Muster"]["source_hash"]


def test_a_forced_run_stores_the_digests_it_finds(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv)
    run_profile(engine, "pb")
    first = _stored(engine)
    _forget_digests(engine)
    assert run_profile(engine, "pb", force=True)["counts"]["unchanged"] == 3
    assert _stored(engine) == first


def test_mirror_deletes_what_left_the_source_while_the_rest_is_found_by_digest(
    engine: Engine, pb_csv: Path
) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv, mode="mirror")
    run_profile(engine, "pb")
    write_csv(pb_csv, PHONEBOOK_HEADER, ROWS[:2])
    report = run_profile(engine, "pb")
    assert (report["counts"]["deleted"], report["counts"]["unchanged"]) == (1, 2)
    assert set(by(records(engine, "phonebook"), "displayname")) == {"Max Muster", "Jürgen Müller"}


def test_an_aborted_run_stores_no_digests(engine: Engine, pb_csv: Path) -> None:
    make_profile(engine, "pb", "csv-phonebook", pb_csv, mode="mirror", max_delete="0")
    run_profile(engine, "pb")
    _forget_digests(engine)
    write_csv(pb_csv, PHONEBOOK_HEADER, ROWS[:2])
    report = run_profile(engine, "pb")
    assert report["status"] == "aborted"
    assert all(r["source_hash"] is None for r in _stored(engine).values())
    assert len(records(engine, "phonebook")) == 3


def test_a_duplicate_of_an_unchanged_row_is_still_reported(engine: Engine, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, [ROWS[0], ROWS[1], ROWS[0]])
    make_profile(engine, "pb", "csv-phonebook", path)
    for _ in range(2):
        report = run_profile(engine, "pb")
        assert report["counts"]["invalid"] == 1
        assert report["errors"][0]["line"] == 4
        assert "duplicate key" in report["errors"][0]["message"]
    assert report["counts"]["unchanged"] == 2


def test_an_expression_that_may_differ_on_the_same_row_keeps_no_digests(
    engine: Engine, pb_csv: Path
) -> None:
    make_profile(
        engine, "pb", "csv-phonebook", pb_csv, variables={"notes": "{{ ['x', 'x'] | random }}"}
    )
    run_profile(engine, "pb")
    assert all(r["source_hash"] is None for r in _stored(engine).values())
    assert run_profile(engine, "pb")["counts"]["unchanged"] == 3  # by content, as before


# --- a source that digests what it receives (as the directory sources do) ----------------


class _DigestingSource:
    """Rows with digests of their own, made as `sources.ldap.LdapSource` makes them: a row
    whose digest `known` accepts comes without data."""

    name = "digesting"
    open_ended = False

    def __init__(self, rows: list[dict[str, str]]) -> None:
        self.data = rows
        self.digested = False
        self._known: Callable[[bytes], bool] | None = None
        self._take: Callable[[bytes], bool] | None = None
        self._base: Any = None

    def fields(self) -> list[str]:
        return list(self.data[0])

    def digest_entries(
        self, base: Any, known: Callable[[bytes], bool], take: Callable[[bytes], bool]
    ) -> bool:
        self._base, self._known, self._take = base, known, take
        return True

    def rows(self) -> Iterator[SourceRow]:
        assert self._known is not None and self._take is not None
        # Every entry of a page is digested (and tested) before the page is handed on.
        digests = []
        for data in self.data:
            h = self._base.copy()
            h.update(repr(sorted(data.items())).encode())
            digests.append(h.digest())
        known = [self._known(d) for d in digests]
        pages = zip(self.data, digests, known, strict=True)
        for n, (data, digest, is_known) in enumerate(pages, 1):
            if not is_known:
                yield SourceRow(n, data, digest=digest)
            elif not self._take(digest):
                yield SourceRow(n, {}, digest=digest, known=True)


def _plan_input(engine: Engine, mapper: Any) -> PlanInput:
    with engine.connect() as conn:
        profile = get_profile(conn, "pb")
    assert profile.id is not None
    return PlanInput(
        profile_id=profile.id,
        target="phonebook",
        mode="mirror",
        settings={"key": "displayname"},
        mapper=mapper,
        normaliser=PhoneNormaliser("DE"),
        hash_key=hash_key(),
        fingerprint="test",
        source_fingerprint="test",
    )


def test_a_known_entry_whose_key_an_earlier_row_took_is_a_duplicate(
    engine: Engine, pb_csv: Path
) -> None:
    from pbx_connector.sync.apply import apply_plan
    from pbx_connector.sync.runner import compile_mapper

    profile = make_profile(engine, "pb", "csv-phonebook", pb_csv, key="displayname")
    mapper = compile_mapper(profile)
    entry = {h: "" for h in PHONEBOOK_HEADER} | {"displayname": "Max", "phone": "1234"}
    other = entry | {"organisation": "another row, the same key"}
    with engine.connect() as conn:
        plan = build_plan(conn, _DigestingSource([entry]), _plan_input(engine, mapper))
    assert plan.counts["created"] == 1
    with engine.begin() as conn:
        apply_plan(conn, plan, plan_profile_id(engine))
    plan.close()

    # The known entry comes after another row with its key: that row has the record.
    source = _DigestingSource([other, entry])
    with engine.connect() as conn:
        plan = build_plan(conn, source, _plan_input(engine, mapper))
    plan.close()
    assert plan.counts["updated"] == 1 and plan.counts["invalid"] == 1
    [error] = plan.errors
    assert error["line"] == 2
    assert error["message"].startswith("duplicate key 'Max'")

    # Alone, the known entry is unchanged, and the other row is then the duplicate.
    with engine.connect() as conn:
        plan = build_plan(conn, _DigestingSource([entry, other]), _plan_input(engine, mapper))
    plan.close()
    assert plan.counts["unchanged"] == 1 and plan.counts["invalid"] == 1
    assert plan.errors[0]["line"] == 2


def plan_profile_id(engine: Engine) -> int:
    with engine.connect() as conn:
        profile_id = get_profile(conn, "pb").id
    assert profile_id is not None
    return profile_id


def test_row_digests_tell_rows_apart_and_depend_on_the_fingerprint() -> None:
    key = b"k" * 32
    one = SourceDigests(key, "a")
    row: dict[str, str | list[str]] = {"a": "1", "b": "2"}
    assert one.row(row) == SourceDigests(key, "a").row(dict(row))
    assert one.row(row) != SourceDigests(key, "b").row(row)
    assert one.row(row) != SourceDigests(b"j" * 32, "a").row(row)
    assert one.row(row) != one.row({"a": "1", "b": ["2"]})
    assert one.row(row) != one.row({"a": "12", "b": ""})
    assert one.row(row) != one.row({"a": "1", "c": "2"})
