"""Searching records: a substring anywhere in a name, number or address, regardless of
case and accents, answered from a trigram index (not by reading the table), and kept
right by imports, hand edits and deletes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine

from pbx_connector.service import App
from pbx_connector.store import db as store_db
from pbx_connector.sync.runner import run_profile
from tests.helpers import PHONEBOOK_HEADER, make_profile, phonebook_row, write_csv


def _names(app: App, term: str) -> list[str]:
    page = app.records.list("phonebook", search=term, limit=None)
    return sorted(str(r.displayname) for r in page.items)  # type: ignore[union-attr]


def _phonebook(engine: Engine, tmp_path: Path) -> Path:
    rows = [
        phonebook_row("Jürgen Müller", "+49 991 12345", organisation="Bäckerei Groß"),
        phonebook_row("Anna Muller", "0991 777"),
        phonebook_row("Zoë Ångström", "+43 1 5550"),
        phonebook_row("Max Mustermann", "+49 89 3005"),
    ]
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)
    make_profile(engine, "pb", "csv-phonebook", path)
    assert run_profile(engine, "pb")["status"] == "ok"
    return path


def test_search_ignores_case_and_accents(engine: Engine, tmp_path: Path) -> None:
    _phonebook(engine, tmp_path)
    app = App(engine)
    assert _names(app, "mül") == ["Anna Muller", "Jürgen Müller"]
    assert _names(app, "MÜLLER") == ["Anna Muller", "Jürgen Müller"]
    assert _names(app, "angst") == ["Zoë Ångström"]
    assert _names(app, "zoe") == ["Zoë Ångström"]
    assert _names(app, "gross") == ["Jürgen Müller"]  # ß is ss, in an organisation
    assert _names(app, "mu") == ["Anna Muller", "Jürgen Müller", "Max Mustermann"]
    assert _names(app, "100%") == []
    assert _names(app, "a_n") == []


def test_search_finds_numbers_by_their_digits(engine: Engine, tmp_path: Path) -> None:
    _phonebook(engine, tmp_path)
    app = App(engine)
    assert _names(app, "12345") == ["Jürgen Müller"]
    assert _names(app, "0991 123") == ["Jürgen Müller"]
    assert _names(app, "+4999177") == ["Anna Muller"]


def test_imports_and_hand_edits_keep_the_index_right(engine: Engine, tmp_path: Path) -> None:
    path = _phonebook(engine, tmp_path)
    app = App(engine)
    (anna,) = app.records.list("phonebook", search="anna").items
    app.records.edit("phonebook", anna.id, {"organisation": "Köln Süd"})
    assert _names(app, "koln") == ["Anna Muller"]
    # A re-import that changes Jürgen's name keeps the organisation it does not manage…
    write_csv(
        path,
        PHONEBOOK_HEADER,
        [
            phonebook_row("Jürgen Müller-Lüdenscheidt", "+49 991 12345"),
            phonebook_row("Anna Muller", "0991 777"),
            phonebook_row("Zoë Ångström", "+43 1 5550"),
        ],
    )
    assert run_profile(engine, "pb")["status"] == "ok"
    assert _names(app, "ludensch") == ["Jürgen Müller-Lüdenscheidt"]
    # …and a mirror run's delete leaves the index too.
    assert _names(app, "musterm") == []
    app.records.delete("phonebook", anna.id)
    assert _names(app, "koln") == []


def test_the_search_reads_the_index(engine: Engine, tmp_path: Path) -> None:
    from sqlalchemy import select

    from pbx_connector.store import search
    from pbx_connector.store.tables import phonebook

    _phonebook(engine, tmp_path)
    with engine.connect() as conn:
        # The query the core runs, as the store plans it.
        query = select(phonebook.c.id).where(search.matches(conn, phonebook, ["mül", "100%"]))
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        if conn.dialect.name != "sqlite":
            conn.exec_driver_sql("SET enable_seqscan = off")
        plan = [
            str(step)
            for step in conn.exec_driver_sql(
                f"EXPLAIN {'QUERY PLAN ' if conn.dialect.name == 'sqlite' else ''}{compiled}"
            ).all()
        ]
    if engine.dialect.name == "sqlite":
        # "INDEX 0:G0": the trigram index answers the GLOB (a bare "0:" would be a scan).
        assert any("VIRTUAL TABLE INDEX 0:G" in step for step in plan), plan
    else:
        assert any("ix_phonebook_search_trgm" in step for step in plan), plan


def test_db_check_finds_and_upgrade_repairs_a_missing_search_index(
    engine: Engine, tmp_path: Path
) -> None:
    _phonebook(engine, tmp_path)
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER phonebook_search_au")
            conn.exec_driver_sql("DROP TABLE phonebook_search")
        else:
            conn.exec_driver_sql("DROP INDEX ix_phonebook_search_trgm")
    problems = store_db.check_schema(engine)
    assert problems and all("search index" in p for p in problems)
    store_db.repair_schema(engine)
    assert store_db.check_schema(engine) == []
    assert _names(App(engine), "mül") == ["Anna Muller", "Jürgen Müller"]
