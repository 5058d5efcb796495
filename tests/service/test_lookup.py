"""Caller-name lookup in the core (`app.lookup`) on SQLite and PostgreSQL: the forms a
number is asked in, precedence, ties, suffix matching, what a sync changes, the clients
let in by address, and that every lookup reads indexes only."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Connection, Engine, insert

from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.errors import (
    ConfigError,
    NotFoundError,
    PermissionDenied,
    StoreError,
    UsageError,
)
from pbx_connector.models.tokens import Principal
from pbx_connector.service import App
from pbx_connector.service.lookup import MAX_NUMBER, asked_number
from pbx_connector.store import lookup as lookup_store
from pbx_connector.store.lookup import key_range, number_key
from pbx_connector.store.tables import phonebook, speeddials, users
from pbx_connector.sync.runner import run_profile
from tests.helpers import PHONEBOOK_HEADER, make_profile, phonebook_row, write_csv


@pytest.fixture
def app(engine: Engine) -> App:
    return App(engine)


def _name(app: App, number: str, user: str | None = None) -> str | None:
    try:
        return app.lookup.find(number, user=user).name
    except NotFoundError:
        return None


# --- the forms of a number ---------------------------------------------------------------


def test_a_number_is_found_in_every_usual_form(app: App) -> None:
    app.records.add("phonebook", {"displayname": "Müller", "phone": "+49 991 12345"})
    app.records.add("phonebook", {"displayname": "Short", "phone": "+49 991 1234"})
    for asked in (
        "0991 12345",
        "+49 (0)991 12345",
        "+49 991 12345",
        "0049 991 12345",
        "+49-991-12345",
        "(0991) 123 45",
        "0991/12345",
        " 099112345 ",
    ):
        assert _name(app, asked) == "Müller", asked
    assert _name(app, "00499911234") == "Short"
    assert app.lookup.find("0991 12345").asked == "+4999112345"


def test_the_outside_line_prefix_is_removed_like_from_stored_numbers(app: App) -> None:
    app.records.add("phonebook", {"displayname": "Müller", "phone": "+49 991 12345"})
    app.records.add("phonebook", {"displayname": "Seven", "phone": "+49 991 2345"})
    app.catalog.set_config({"outside_line_prefix": "0"})
    # A PBX that shows callers with the prefix that calls them back.
    assert _name(app, "00991 12345") == "Müller"
    assert _name(app, "09912345") == "Seven"  # `9912345` with the outside-line prefix
    app.catalog.set_config({"outside_line_prefix": "9"})
    assert _name(app, "9 0991 12345") == "Müller"
    assert _name(app, "90991 12345") == "Müller"


def test_an_internal_number_finds_a_users_extension_and_internal_entries(app: App) -> None:
    app.records.add("users", {"username": "anna", "displayname": "Anna Berg", "extension": "101"})
    app.records.add("phonebook", {"displayname": "Conference room", "phone": "200"})
    assert _name(app, "101") == "Anna Berg"
    found = app.lookup.find("101")
    assert (found.source, found.field, found.number, found.e164) == (
        "users",
        "extension",
        "101",
        None,
    )
    assert _name(app, "200") == "Conference room"
    assert _name(app, "102") is None
    # An internal number is not the end of an external one.
    app.records.add("phonebook", {"displayname": "Outside", "phone": "+49 89 1234101"})
    assert _name(app, "101") == "Anna Berg"


def test_a_user_is_named_by_display_name_then_full_name_then_username(app: App) -> None:
    app.records.add("users", {"username": "a", "displayname": "Anna B", "extension": "11"})
    app.records.add(
        "users", {"username": "b", "givenname": "Bert", "surname": "C", "extension": "12"}
    )
    app.records.add("users", {"username": "carl", "extension": "13"})
    assert [_name(app, n) for n in ("11", "12", "13")] == ["Anna B", "Bert C", "carl"]


def test_users_are_found_by_direct_mobile_and_home_number_not_fax(app: App) -> None:
    app.records.add(
        "users",
        {
            "username": "anna",
            "displayname": "Anna",
            "phone": "+49 991 100",
            "mobile": "+49 171 2000000",
            "homephone": "+49 991 300",
            "fax": "+49 991 400",
        },
    )
    fields = {n: app.lookup.find(n).field for n in ("0991 100", "0171 2000000", "0991 300")}
    assert fields == {"0991 100": "phone", "0171 2000000": "mobile", "0991 300": "homephone"}
    assert _name(app, "0991 400") is None


# --- precedence and ties -----------------------------------------------------------------


def test_precedence_private_then_global_then_users_then_speed_dials(app: App) -> None:
    number = "+49 991 12345"
    app.records.add("users", {"username": "anna", "displayname": "Anna", "extension": "101"})
    dial = app.records.add("speeddials", {"code": "*1", "number": number, "displayname": "Dial"})
    user = app.records.add("users", {"username": "bert", "displayname": "Bert", "mobile": number})
    glob = app.records.add("phonebook", {"displayname": "Global", "phone": number})
    app.records.add("phonebook", {"displayname": "Private", "phone": number, "owner": "anna"})

    found = app.lookup.find("0991 12345", user="anna")
    assert (found.name, found.source, found.target, found.owner) == (
        "Private",
        "private",
        "phonebook",
        "anna",
    )
    assert _name(app, "0991 12345", user="ANNA") == "Private"  # a username as typed
    assert _name(app, "0991 12345", user="101") == "Private"  # or the user's extension
    # Another user's private entry is not theirs, and nobody's is the global phonebook.
    assert _name(app, "0991 12345", user="bert") == "Global"
    assert _name(app, "0991 12345", user="nobody") == "Global"
    assert _name(app, "0991 12345") == "Global"
    app.records.delete("phonebook", glob.id)
    assert app.lookup.find("0991 12345").source == "users"
    app.records.delete("users", user.id)
    assert (app.lookup.find("0991 12345").source, _name(app, "0991 12345")) == (
        "speeddials",
        "Dial",
    )
    # A speed dial without a name names nobody.
    app.records.edit("speeddials", dial.id, {"displayname": ""})
    assert _name(app, "0991 12345") is None


def test_ties_go_to_the_lowest_id_then_the_first_field(app: App) -> None:
    number = "+49 991 12345"
    first = app.records.add("phonebook", {"displayname": "First", "mobile": number})
    second = app.records.add("phonebook", {"displayname": "Second", "phone": number})
    third = app.records.add(
        "phonebook", {"displayname": "Third", "mobile": number, "phone": number}
    )
    for _ in range(3):
        found = app.lookup.find("0991 12345")
        assert (found.id, found.name, found.field) == (first.id, "First", "mobile")
    app.records.delete("phonebook", first.id)
    assert app.lookup.find("0991 12345").id == second.id
    app.records.delete("phonebook", second.id)
    found = app.lookup.find("0991 12345")
    assert (found.id, found.field) == (third.id, "phone")  # a record's phone before its mobile


# --- suffix matching ---------------------------------------------------------------------


def test_suffix_matching_compares_the_last_digits_after_the_whole_number(app: App) -> None:
    austria = app.records.add("phonebook", {"displayname": "Wien", "phone": "+43 991 12345"})
    app.records.add("phonebook", {"displayname": "Deggendorf", "phone": "+49 991 12345"})
    assert _name(app, "+41 991 12345") is None  # exact unless set otherwise
    app.catalog.set_config({"lookup_match": "suffix", "lookup_suffix_digits": "7"})
    found = app.lookup.find("+41 991 12345")
    assert (found.id, found.match, found.name) == (austria.id, "suffix", "Wien")  # lowest id
    # A whole match comes first, even over a record with a lower id.
    found = app.lookup.find("0991 12345")
    assert (found.name, found.match) == ("Deggendorf", "exact")
    # Fewer digits than compared: only the whole number.
    assert _name(app, "+49 2345") is None
    # An internal number is compared whole, never by its end.
    app.catalog.set_config({"lookup_suffix_digits": "4"})
    assert _name(app, "2345") is None
    app.catalog.set_config({"lookup_suffix_digits": "8"})
    assert _name(app, "+41 991 12345") == "Wien"
    assert _name(app, "+41 991 02345") is None
    # A PBX that strips the leading + and country code's 0s: the end still matches.
    assert app.lookup.find("4399112345").name == "Wien"


def test_suffix_matching_of_nines_and_precedence(app: App) -> None:
    app.records.add("users", {"username": "anna", "displayname": "Anna", "extension": "101"})
    app.records.add("speeddials", {"code": "1", "number": "+49 89 9999999", "displayname": "Nines"})
    app.records.add(
        "phonebook", {"displayname": "Mine", "phone": "+44 20 9999999", "owner": "anna"}
    )
    app.catalog.set_config({"lookup_match": "suffix", "lookup_suffix_digits": "7"})
    assert _name(app, "+43 1 9999999") == "Nines"
    assert _name(app, "+43 1 9999999", user="anna") == "Mine"
    assert _name(app, "+43 1 8999999") is None


def test_lookup_settings_are_checked_when_set(app: App) -> None:
    with pytest.raises(ConfigError) as exc:
        app.catalog.set_config({"lookup_match": "fuzzy"})
    assert exc.value.field == "lookup_match"
    for bad in ("3", "16", "x", "", "٨"):
        with pytest.raises(ConfigError) as exc:
            app.catalog.set_config({"lookup_suffix_digits": bad})
        assert exc.value.field == "lookup_suffix_digits"
    for bad in ("10.0.0.0/33", "nonsense", "10.0.0.1, example.org"):
        with pytest.raises(ConfigError) as exc:
            app.catalog.set_config({"lookup_clients": bad})
        assert exc.value.field == "lookup_clients"
    config = app.catalog.set_config(
        {
            "lookup_match": " Suffix ",
            "lookup_suffix_digits": "09",
            "lookup_clients": "10.0.0.0/8 192.168.1.5; 2001:db8::1/64",
        }
    )
    assert (config.lookup_match, config.lookup_suffix_digits) == ("suffix", "9")
    assert config.lookup_clients == "10.0.0.0/8, 192.168.1.5/32, 2001:db8::/64"
    assert app.catalog.set_config({"lookup_clients": ""}).lookup_clients == ""


def test_clients_let_in_by_address(app: App) -> None:
    assert not app.lookup.allows_client("127.0.0.1")
    app.catalog.set_config({"lookup_clients": "10.0.0.0/8, 192.168.1.5, fd00::/8"})
    allowed = ["10.1.2.3", "192.168.1.5", "::ffff:10.0.0.1", "fd12::1"]
    refused = ["11.0.0.1", "192.168.1.6", "", "garbage", "127.0.0.1", "::1", "fe80::1%eth0"]
    assert [a for a in allowed + refused if app.lookup.allows_client(a)] == allowed


# --- input that is not a number ---------------------------------------------------------


def test_what_is_not_a_number_is_answered_cleanly(app: App) -> None:
    app.records.add("phonebook", {"displayname": "Müller", "phone": "+49 991 12345"})
    for bad in ("", "   "):
        with pytest.raises(UsageError) as exc:
            app.lookup.find(bad)
        assert exc.value.field == "number"
        assert app.lookup.name(bad) == ""
    too_long = "0991 12345" + "9" * MAX_NUMBER
    with pytest.raises(UsageError, match="longer than"):
        app.lookup.find(too_long)
    assert app.lookup.name(too_long) == ""
    for hostile in (
        "anonymous",
        "0991 12345\x00",
        "\x000991 12345",
        "+",
        "🙂",
        "'; DROP TABLE phonebook; --",
        "\ud800",
        "9" * MAX_NUMBER,
        "%",
        "*",
    ):
        with pytest.raises(NotFoundError):
            app.lookup.find(hostile)
        assert app.lookup.name(hostile) == ""
    for user in ("\x00", "x" * 10_000, "\ud800", "%", ""):
        assert _name(app, "0991 12345", user=user) == "Müller"


# --- what a sync changes ----------------------------------------------------------------


def test_a_sync_is_visible_to_the_next_lookup(app: App, engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "pb.csv"
    write_csv(path, PHONEBOOK_HEADER, [phonebook_row("Old Name", "+49 991 12345")])
    make_profile(engine, "office", "csv-phonebook", path)
    assert run_profile(engine, "office")["status"] == "ok"
    assert _name(app, "0991 12345") == "Old Name"
    app.catalog.set_config({"lookup_match": "suffix", "lookup_suffix_digits": "7"})
    write_csv(
        path,
        PHONEBOOK_HEADER,
        [phonebook_row("New Name", "+49 991 12345", mobile="+49 171 7654321")],
    )
    assert run_profile(engine, "office")["status"] == "ok"
    assert _name(app, "0991 12345") == "New Name"
    assert _name(app, "+43 171 7654321") == "New Name"  # the updated number's end
    write_csv(path, PHONEBOOK_HEADER, [phonebook_row("New Name", "+49 991 54321")])
    assert run_profile(engine, "office", force=True)["status"] == "ok"
    assert _name(app, "0991 12345") is None
    assert _name(app, "+43 171 7654321") is None
    assert _name(app, "0991 54321") == "New Name"


def test_hand_edits_keep_the_stored_keys(app: App) -> None:
    entry = app.records.add("phonebook", {"displayname": "A", "phone": "200"})
    assert _name(app, "200") == "A"
    app.records.edit("phonebook", entry.id, {"phone": "+49 991 12345"})
    assert _name(app, "200") is None
    assert _name(app, "0991 12345") == "A"
    app.catalog.set_config({"lookup_match": "suffix", "lookup_suffix_digits": "6"})
    assert _name(app, "+1 555 112345") == "A"
    app.records.edit("phonebook", entry.id, {"phone": ""})
    assert _name(app, "+1 555 112345") is None


# --- indexes only ------------------------------------------------------------------------

_KINDS: list[tuple[lookup_store.Kind, str]] = [
    ("e164", "+4989000123"),
    ("internal", "101"),
    ("suffix", "3210000"),
    ("suffix_open", "9999"),
]


def _fill(conn: Connection, count: int) -> None:
    """`count` records of each table, written as the store writes them."""

    def numbers(prefix: str, i: int) -> dict[str, Any]:
        e164 = f"+49{prefix}{i:07d}"
        return {"e164": e164, "rev": number_key(e164, e164)}

    rows = []
    for i in range(count):
        n = numbers("89", i)
        rows.append(
            {
                "displayname": f"Entry {i}",
                "phone": n["e164"],
                "phone_e164": n["e164"],
                "phone_rev": n["rev"],
                "mobile": "",
                "homephone": "",
                "fax": "",
                "owner": f"user{i % 50}" if i % 3 == 0 else None,
                "givenname": "",
                "surname": "",
                "organisation": "",
                "email": "",
                "notes": "",
                "homepage": "",
                "customernumber": "",
                "search_text": "",
            }
        )
    conn.execute(insert(phonebook).values(created_at=_now(), updated_at=_now()), rows)
    user_rows = []
    for i in range(count):
        n = numbers("30", i)
        user_rows.append(
            {
                "username": f"user{i}",
                "displayname": "",
                "givenname": "",
                "surname": "",
                "email": "",
                "extension": str(1000 + i),
                "phone": "",
                "mobile": n["e164"],
                "mobile_e164": n["e164"],
                "mobile_rev": n["rev"],
                "homephone": "",
                "fax": "",
                "organisation": "",
                "job": "",
                "auth": "internal",
                "roles": [],
                "enabled": True,
                "builtin": False,
                "search_text": "",
            }
        )
    conn.execute(insert(users).values(created_at=_now(), updated_at=_now()), user_rows)
    dial_rows = [
        {
            "code": str(i),
            "number": f"+4940{i:07d}",
            "number_e164": f"+4940{i:07d}",
            "number_rev": number_key("", f"+4940{i:07d}"),
            "displayname": f"Dial {i}",
            "search_text": "",
        }
        for i in range(count)
    ]
    conn.execute(insert(speeddials).values(created_at=_now(), updated_at=_now()), dial_rows)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _plan(conn: Connection, kind: lookup_store.Kind, value: str, owner: str | None) -> str:
    statement = lookup_store.statement(kind, bool(owner))
    params = lookup_store.parameters("suffix" if kind == "suffix_open" else kind, value, owner)
    compiled = statement.compile(conn)
    bound = compiled.construct_params(params)
    if conn.dialect.name == "sqlite":
        args: Any = tuple(bound[k] for k in compiled.positiontup)
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), args).all()
        return "\n".join(str(r[-1]) for r in rows)
    rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), bound).all()
    return "\n".join(str(r[0]) for r in rows)


def test_every_lookup_reads_indexes_only(engine: Engine) -> None:
    with engine.begin() as conn:
        _fill(conn, 3000)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")
    with engine.connect() as conn:
        for kind, value in _KINDS:
            for owner in (None, "user3"):
                plan = _plan(conn, kind, value, owner)
                where = f"{kind} owner={owner}:\n{plan}"
                if conn.dialect.name == "sqlite":
                    # `SCAN anon_N` reads the one row a branch's subquery gives, no table.
                    reads = [
                        line
                        for line in plan.splitlines()
                        if re.match(r"(SCAN|SEARCH) ", line) and not re.match(r"SCAN anon_", line)
                    ]
                    assert reads and all(
                        re.match(r"SEARCH \w+ USING (COVERING )?INDEX ", line) for line in reads
                    ), where
                    if kind in ("e164", "internal"):
                        # The lowest id with the number comes in the index's order.
                        assert "TEMP B-TREE" not in plan, where
                else:
                    assert "Seq Scan" not in plan, where
                    assert "Index Scan" in plan, where
                # Not the whole table in id order, stopping at the first with the number.
                assert "_pkey" not in plan, where
                expected = 10 if owner else 7
                if kind == "internal":
                    expected += 1  # and the users' extensions
                read = r"SEARCH " if conn.dialect.name == "sqlite" else r"Index (Only )?Scan"
                assert len(re.findall(read, plan)) >= expected, where


def test_lookups_of_a_filled_store_find_their_records(app: App, engine: Engine) -> None:
    with engine.begin() as conn:
        _fill(conn, 300)
    assert _name(app, "089 0000124") == "Entry 124"
    assert _name(app, "089 0000123") is None  # private, of user23
    assert _name(app, "089 0000123", user="user23") == "Entry 123"
    assert _name(app, "030 0000042") == "user42"
    assert _name(app, "1042") == "user42"
    assert _name(app, "040 0000007") == "Dial 7"


# --- the number as a lookup reads it -----------------------------------------------------

_NORMALISERS = [PhoneNormaliser("DE", ""), PhoneNormaliser("DE", "0"), PhoneNormaliser("AT", "9")]


@given(st.text(max_size=80), st.sampled_from(_NORMALISERS))
def test_any_text_is_read_as_a_number_or_nothing(text: str, normaliser: PhoneNormaliser) -> None:
    asked = asked_number(text, normaliser)
    if asked is None:
        return
    assert asked.digits and asked.digits.isascii() and asked.digits.isdigit()
    if asked.e164 is not None:
        assert re.fullmatch(r"\+[1-9][0-9]{1,14}", asked.e164)
        assert asked.e164 == normaliser.normalise(text).e164
        assert asked.digits == asked.e164[1:]
        # What a lookup compares is what a record holding this number stores.
        assert number_key(text, normaliser.normalise(text).e164) == asked.digits[::-1]
    if asked.internal is not None:
        assert asked.e164 is None and len(asked.internal) <= 6
        assert number_key(asked.internal, None) == asked.internal[::-1]


@given(
    st.from_regex(r"[0-9]{0,12}", fullmatch=True),
    st.from_regex(r"[0-9]{1,6}", fullmatch=True),
)
def test_a_key_range_holds_exactly_the_keys_with_its_start(key: str, start: str) -> None:
    low, high = key_range(start)
    inside = low <= key and (high is None or key < high)
    assert inside == key.startswith(start)


@given(
    st.from_regex(r"\+?[0-9]{1,16}", fullmatch=True),
    st.lists(st.tuples(st.integers(0, 20), st.sampled_from([" ", "-", "/", "."])), max_size=4),
)
def test_formatting_never_changes_what_is_compared(
    digits: str, marks: list[tuple[int, str]]
) -> None:
    formatted = digits
    for position, mark in marks:
        cut = min(max(position, 1 if digits.startswith("+") else 0), len(formatted))
        formatted = formatted[:cut] + mark + formatted[cut:]
    for normaliser in _NORMALISERS:
        assert asked_number(formatted, normaliser) == asked_number(digits, normaliser)


# --- the lookup role and password checks by a PBX ----------------------------------------


def test_a_lookup_token_reads_nothing_else_and_checks_passwords_as_the_pbx(app: App) -> None:
    new = app.tokens.create("asterisk", role="lookup")
    assert new.view.role == "lookup"
    pbx = app.tokens.authenticate(new.token)
    assert (pbx.role, pbx.can_read, pbx.can_write) == ("lookup", False, False)
    with pytest.raises(PermissionDenied, match="lookup token may only") as denied:
        app.tokens.require_reader(pbx)
    assert denied.value.http_status == 403
    with pytest.raises(PermissionDenied, match="has lookup"):
        app.tokens.require_admin(pbx)
    viewer = app.tokens.authenticate(app.tokens.create("wall", role="viewer").token)
    app.tokens.require_reader(viewer)
    admin = app.tokens.authenticate(app.tokens.create("ops", role="admin").token)

    app.auth.update_settings({"failure_delay_ms": "0"})
    app.records.add("users", {"username": "carol"})
    app.records.set_secret("carol", "password", "Carol-pw-5521")
    assert app.auth.check_for(pbx, "Carol", "Carol-pw-5521").accepted
    assert not app.auth.check_for(pbx, "carol", "wrong").accepted
    assert app.auth.check_for(admin, "carol", "Carol-pw-5521").accepted
    for refused in (viewer, Principal(username="", role="lookup")):
        with pytest.raises(PermissionDenied):
            app.auth.check_for(refused, "carol", "Carol-pw-5521")
    log = app.auth.log("carol").items
    assert [(a.origin, a.outcome) for a in log] == [
        ("api", "accepted"),
        ("pbx", "rejected"),
        ("pbx", "accepted"),
    ]


def test_who_may_own_a_lookup_token(app: App) -> None:
    app.records.add("users", {"username": "vera", "roles": "viewer"})
    app.records.add("users", {"username": "sam", "roles": "sales"})
    assert app.tokens.create("v", role="lookup", owner="vera").view.active
    with pytest.raises(UsageError, match="does not hold the role 'lookup'"):
        app.tokens.create("s", role="lookup", owner="sam")
    with pytest.raises(UsageError, match="admin, viewer, lookup"):
        app.tokens.create("x", role="root")


# --- the migration ------------------------------------------------------------------------


def test_the_migration_fills_the_keys_of_the_numbers_a_store_holds(db_url: str) -> None:
    from alembic import command
    from sqlalchemy import text

    from pbx_connector.store import db as store_db
    from pbx_connector.store.search import missing_search_index

    engine = store_db.make_engine(db_url)
    try:
        config = store_db._alembic_config(engine)
        command.upgrade(config, "0008")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO phonebook (displayname, phone, phone_e164, givenname, surname, "
                    "organisation, email, mobile, homephone, fax, notes, homepage, "
                    "customernumber, created_at, updated_at, search_text) VALUES "
                    "('Old entry', '+49 991 12345', '+4999112345', '', '', '', '', '200', '', "
                    "'', '', '', '', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'old entry')"
                )
            )
        command.upgrade(config, "head")
        app = App(engine)
        assert _name(app, "0991 12345") == "Old entry"
        assert _name(app, "200") == "Old entry"
        app.catalog.set_config({"lookup_match": "suffix", "lookup_suffix_digits": "7"})
        assert _name(app, "+43 991 12345") == "Old entry"
        # And back: the search index of the tables the downgrade copies is made again.
        command.downgrade(config, "0008")
        with engine.connect() as conn:
            assert missing_search_index(conn) == []
        command.upgrade(config, "head")
        assert _name(app, "+43 991 12345") == "Old entry"
    finally:
        engine.dispose()


# --- a store that goes away ------------------------------------------------------------


def test_a_lost_server_connection_is_a_store_error_and_the_next_lookup_reconnects(
    app: App, engine: Engine, request: pytest.FixtureRequest
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("an SQLite store has no server connection to lose")
    app.records.add("phonebook", {"displayname": "Müller", "phone": "+49 991 12345"})
    assert _name(app, "0991 12345") == "Müller"  # the pool now holds a connection
    request.getfixturevalue("postgres_server").terminate_connections(engine.url.database)
    with pytest.raises(StoreError, match="lost the connection"):
        app.lookup.find("0991 12345")
    # The dead connection is not handed out again.
    assert _name(app, "0991 12345") == "Müller"
