"""The lookup answered without waiting (`name_at_once`, `find_at_once`), as `serve`
answers a PBX on its event loop: the same answers as `name`/`find` on SQLite, and None
(ask again where waiting is fine) whenever an answer would need a wait: a PostgreSQL
store, settings due to be read again, a phone token naming its user by extension, the
store locked."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from sqlalchemy import Engine

from pbx_connector.errors import NotFoundError, PermissionDenied
from pbx_connector.service import App


@pytest.fixture
def app(engine: Engine) -> App:
    return filled(App(engine))


def filled(app: App) -> App:
    """`app` with a user, a global and a private phonebook entry with the same number,
    and a speed dial."""
    app.records.add("users", {"username": "anna", "displayname": "Anna", "extension": "101"})
    app.records.add("users", {"username": "ben", "extension": "102", "mobile": "+49 171 555"})
    app.records.add("phonebook", {"displayname": "Global", "phone": "+49 991 12345"})
    app.records.add(
        "phonebook", {"displayname": "Anna's", "phone": "+49 991 12345", "owner": "anna"}
    )
    app.records.add("speeddials", {"code": "7", "displayname": "Pizza", "number": "+49 991 777"})
    return app


ASKED = [
    ("0991 12345", None),
    ("0991 12345", "anna"),
    ("0991 12345", "101"),
    ("0991 12345", "nobody"),
    ("+49 991 12345", " Anna "),
    ("101", None),
    ("0171 555", None),
    ("0991 777", None),
    ("0991 99999", None),
    ("not a number", None),
    ("", None),
    ("\x00", "anna"),
]


def test_the_same_answers_as_the_lookup_that_may_wait(app: App) -> None:
    if app.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL: see the test below")
    app.lookup.name("0991 12345")  # the settings, read where reading may wait
    for number, user in ASKED:
        assert app.lookup.name_at_once(number, user=user) == app.lookup.name(number, user=user)
        try:
            expected: object = app.lookup.find(number, user=user)
        except NotFoundError:
            expected = NotFoundError
        except Exception as exc:  # the same refusal, whatever it is
            expected = type(exc)
        try:
            got: object = app.lookup.find_at_once(number, user=user)
        except Exception as exc:
            got = type(exc)
        assert got == expected, (number, user)
    app.catalog.set_config({"lookup_match": "suffix", "lookup_suffix_digits": "6"})
    app.lookup.name("0")
    assert app.lookup.name_at_once("+43 991 12345") == "Global"  # the last six digits


def test_postgresql_is_always_asked_in_a_thread(app: App) -> None:
    if app.engine.dialect.name == "sqlite":
        pytest.skip("SQLite answers at once")
    app.lookup.name("0991 12345")
    assert app.lookup.name_at_once("0991 12345") is None
    assert app.lookup.find_at_once("0991 12345") is None


@pytest.fixture
def sqlite_app(app: App) -> App:
    if app.engine.dialect.name != "sqlite":
        pytest.skip("only an SQLite store is answered at once")
    return app


def test_settings_due_to_be_read_are_read_where_waiting_is_fine(sqlite_app: App) -> None:
    app = sqlite_app
    app.lookup.name("0")
    assert app.lookup.name_at_once("0991 12345") == "Global"
    app.catalog.set_config({"outside_line_prefix": "0"})  # a write: the copy is dropped
    assert app.lookup.name_at_once("0991 12345") is None
    assert app.lookup.name("00991 12345") == "Global"  # reads them again
    assert app.lookup.name_at_once("00991 12345") == "Global"


def test_a_phone_token_naming_its_user_by_extension_waits(sqlite_app: App) -> None:
    app = sqlite_app
    token = app.tokens.create("desk", role="phone", owner="anna").token
    phone = app.tokens.authenticate(token)
    app.lookup.name("0")
    assert app.lookup.name_at_once("0991 12345", caller=phone) == "Anna's"
    assert app.lookup.name_at_once("0991 12345", user="ANNA", caller=phone) == "Anna's"
    assert app.lookup.name_at_once("0991 12345", user="101", caller=phone) is None
    assert app.lookup.name("0991 12345", user="101", caller=phone) == "Anna's"
    # Whether "ben" is anna's id or extension is a read of the store: asked where it may
    # wait, and refused there.
    assert app.lookup.name_at_once("0991 12345", user="ben", caller=phone) is None
    with pytest.raises(PermissionDenied):
        app.lookup.name("0991 12345", user="ben", caller=phone)


def test_a_locked_store_is_not_waited_for(sqlite_app: App) -> None:
    app = sqlite_app
    app.lookup.name("0")

    def at_once() -> str | None:
        answers: list[str | None] = []
        worker = threading.Thread(target=lambda: answers.append(app.lookup.name_at_once("101")))
        worker.start()
        worker.join(timeout=30)
        return answers[0]

    # A writer that keeps the store to itself (exclusive locking mode, taken while no
    # one else has it open): readers, even in WAL mode, would have to wait for it.
    app.engine.dispose()
    path = app.engine.url.database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE users SET displayname = 'Anna' WHERE username = 'anna'")
    try:
        assert at_once() is None  # at once, not after the busy timeout
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert at_once() == "Anna"


def test_each_thread_reads_on_its_own_connection(sqlite_app: App) -> None:
    app = sqlite_app
    seen: list[sqlite3.Connection] = []
    for _ in range(2):
        worker = threading.Thread(target=lambda: seen.append(app.no_wait_reader()))
        worker.start()
        worker.join()
    assert seen[0] is not seen[1]
    assert app.no_wait_reader() is app.no_wait_reader()
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        app.no_wait_reader().execute("DELETE FROM users")
    assert app.records.get("users", "anna").username == "anna"
