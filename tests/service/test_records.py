"""The records core (`app.records`) on both stores: what it returns, what it refuses, and
that its models print exactly the JSON the command line has always printed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from pbx_connector.domain.passwords import verify_secret
from pbx_connector.errors import (
    ConfigError,
    ConflictError,
    NotFoundError,
    ProtectedRecordError,
    RecordError,
    UsageError,
)
from pbx_connector.models.base import Page
from pbx_connector.models.records import PhonebookEntry, SpeedDial, User
from pbx_connector.service import App
from pbx_connector.store import records as record_store
from pbx_connector.store.tables import users as users_table
from pbx_connector.sync.runner import run_profile
from tests.helpers import PHONEBOOK_HEADER, make_profile, phonebook_row, write_csv


@pytest.fixture
def app(engine: Engine) -> App:
    return App(engine)


def _names(
    app: App, *, search: str | None = None, owner: str | None = None, order: str | None = None
) -> list[str]:
    """The display names of the phonebook entries a list shows, in its order."""
    page = app.records.list("phonebook", search=search, owner=owner, order=order, limit=None)
    return [e.displayname for e in page.items]


def _phonebook(app: App) -> None:
    for name, phone, org in [
        ("Pizza Roma", "0991 123456", "Roma GmbH"),
        ("anna Berger", "+49 89 1234567", "Example AG"),
        ("Zoltan Kiss", "+36 1 234 5678", ""),
        ("Bob Example", "", "ACME"),
    ]:
        app.records.add("phonebook", {"displayname": name, "phone": phone, "organisation": org})


def _imported(engine: Engine, tmp_path: Path) -> None:
    rows = [phonebook_row("Jürgen Müller", "+49 991 12345", organisation="pascom")]
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)
    make_profile(engine, "office", "csv-phonebook", path)
    assert run_profile(engine, "office")["status"] == "ok"


# --- the JSON the command line prints ------------------------------------------------------


def test_models_dump_exactly_what_the_store_listing_shows(
    app: App, engine: Engine, tmp_path: Path
) -> None:
    _imported(engine, tmp_path)
    app.records.add("users", {"username": "eve", "extension": "42", "roles": "a, b"})
    app.records.set_secret("eve", "pin", "1234")
    app.records.add("users", {"username": "jdoe"})
    app.records.add("phonebook", {"displayname": "Mum", "phone": "+49 991 7", "owner": "jdoe"})
    app.records.add("phonebook", {"displayname": "Short", "phone": "42"})
    app.records.add("speeddials", {"code": "*1", "number": "+49 991 1"})
    for target in ("users", "phonebook", "speeddials"):
        with engine.connect() as conn:
            expected = record_store.list_records(conn, target)
        dumped = [r.model_dump(mode="json") for r in app.records.list(target, limit=None).items]
        assert dumped == expected
        assert [list(d) for d in dumped] == [list(e) for e in expected]  # key order too
    [entry] = [e for e in app.records.list("phonebook").items if e.origin is not None]
    assert entry.origin is not None and entry.origin.profile == "office"


def test_one_model_per_target(app: App) -> None:
    app.records.add("phonebook", {"displayname": "A"})
    app.records.add("speeddials", {"code": "1", "number": "+49 991 1"})
    assert isinstance(app.records.get("users", "admin"), User)
    assert isinstance(app.records.list("phonebook").items[0], PhonebookEntry)
    assert isinstance(app.records.list("speeddials").items[0], SpeedDial)
    # Each target's page is a model of its own (the API's JSON Schema shows its fields).
    assert type(app.records.list("users")) is Page[User]
    assert type(app.records.list("phonebook", search="\x00")) is Page[PhonebookEntry]


# --- list: search, paging, order, owner ----------------------------------------------------


def test_search_is_case_insensitive_over_the_text_fields(app: App) -> None:
    _phonebook(app)
    assert _names(app, search="ROMA") == ["Pizza Roma"]
    assert _names(app, search="example") == ["anna Berger", "Bob Example"]
    assert _names(app, search="acme") == ["Bob Example"]
    assert _names(app, search="  ") == _names(app)
    assert _names(app, search="nobody") == []
    app.records.add("phonebook", {"displayname": "Jürgen Müller"})
    assert _names(app, search="MÜL") == _names(app, search="mül") == ["Jürgen Müller"]


def test_search_takes_like_wildcards_literally(app: App) -> None:
    _phonebook(app)
    app.records.add("phonebook", {"displayname": "100% Pizza"})
    assert _names(app, search="%") == ["100% Pizza"]
    assert _names(app, search="_") == []


def test_search_finds_numbers_as_typed_and_by_their_e164_form(app: App) -> None:
    _phonebook(app)
    assert _names(app, search="0991 123") == ["Pizza Roma"]  # as stored
    assert _names(app, search="+49991123") == ["Pizza Roma"]  # its E.164 form
    assert _names(app, search="0049 89 123") == ["anna Berger"]
    assert _names(app, search="089/1234") == ["anna Berger"]
    assert _names(app, search="+36") == ["Zoltan Kiss"]


def test_search_finds_users_by_username_and_extension(app: App) -> None:
    app.records.add("users", {"username": "eve", "displayname": "Eve", "extension": "4711"})
    app.records.add("users", {"username": "bob", "email": "bob@example.org"})
    found = app.records.list("users", search="471")
    assert [u.username for u in found.items] == ["eve"] and found.total == 1
    assert [u.username for u in app.records.list("users", search="EXAMPLE.ORG").items] == ["bob"]


def test_a_search_for_a_character_no_record_holds_finds_nothing(app: App) -> None:
    _phonebook(app)
    page = app.records.list("phonebook", search="Roma\x00")
    assert page.items == [] and page.total == 0


def test_pages_carry_the_total_of_all_matches(app: App) -> None:
    for i in range(7):
        app.records.add("phonebook", {"displayname": f"Entry {i}"})
    app.records.add("phonebook", {"displayname": "Other"})
    first = app.records.list("phonebook", search="entry", limit=3)
    assert [e.displayname for e in first.items] == ["Entry 0", "Entry 1", "Entry 2"]
    assert first.total == 7
    last = app.records.list("phonebook", search="entry", limit=3, offset=6)
    assert [e.displayname for e in last.items] == ["Entry 6"] and last.total == 7
    beyond = app.records.list("phonebook", search="entry", limit=3, offset=10)
    assert beyond.items == [] and beyond.total == 7
    counted = app.records.list("phonebook", limit=0)
    assert counted.items == [] and counted.total == 8
    assert len(app.records.list("phonebook", limit=None).items) == 8


def test_the_default_page_is_fifty(app: App) -> None:
    for i in range(51):
        app.records.add("speeddials", {"code": str(100 + i), "number": "+49 991 1"})
    page = app.records.list("speeddials")
    assert len(page.items) == 50 and page.total == 51


@pytest.mark.parametrize(
    ("limit", "offset", "field"),
    [(-1, 0, "limit"), (1001, 0, "limit"), (10, -1, "offset"), (10, 2**63, "offset")],
)
def test_pages_out_of_range_are_refused(app: App, limit: int, offset: int, field: str) -> None:
    with pytest.raises(ConfigError) as exc:
        app.records.list("phonebook", limit=limit, offset=offset)
    assert exc.value.field == field


def test_order_by_a_field_either_way_without_regard_to_case(app: App) -> None:
    _phonebook(app)
    names = ["anna Berger", "Bob Example", "Pizza Roma", "Zoltan Kiss"]
    assert _names(app, order="displayname") == names
    assert _names(app, order="-displayname") == names[::-1]
    assert _names(app, order="-id") == ["Bob Example", "Zoltan Kiss", "anna Berger", "Pizza Roma"]
    # Equal values (every surname is empty) go by id, so pages never overlap.
    assert _names(app, order="surname") == [
        "Pizza Roma",
        "anna Berger",
        "Zoltan Kiss",
        "Bob Example",
    ]


def test_empty_extensions_sort_first_on_both_stores(app: App) -> None:
    app.records.add("users", {"username": "b", "extension": "20"})
    app.records.add("users", {"username": "c", "extension": "10"})
    asc = [u.username for u in app.records.list("users", order="extension").items]
    assert asc == ["admin", "c", "b"]
    desc = [u.username for u in app.records.list("users", order="-extension").items]
    assert desc == ["b", "c", "admin"]


@pytest.mark.parametrize("order", ["colour", "password", "pin_set", "roles", "--id", "-"])
def test_an_order_that_is_not_a_field_is_refused(app: App, order: str) -> None:
    target = "phonebook" if order == "colour" else "users"
    with pytest.raises(ConfigError) as exc:
        app.records.list(target, order=order)
    assert exc.value.field == "order"


def test_owner_selects_a_private_phonebook_or_the_global_one(app: App) -> None:
    app.records.add("users", {"username": "jdoe"})
    app.records.add("phonebook", {"displayname": "Mum", "owner": "jdoe"})
    app.records.add("phonebook", {"displayname": "Global"})
    assert _names(app, owner="jdoe") == ["Mum"]
    assert _names(app, owner="JDoe") == ["Mum"]
    assert _names(app, owner="") == ["Global"]
    assert _names(app) == ["Mum", "Global"]
    assert _names(app, owner="ghost") == []
    with pytest.raises(ConfigError) as exc:
        app.records.list("users", owner="jdoe")
    assert exc.value.field == "owner"


def test_an_unknown_target_is_not_found(app: App) -> None:
    with pytest.raises(NotFoundError):
        app.records.list("faxes")


# --- get -----------------------------------------------------------------------------------


def test_get_by_id_or_by_username_in_any_spelling(app: App) -> None:
    eve = app.records.add("users", {"username": "eve"})
    for ref in (eve.id, str(eve.id), "eve", "EVE", " Eve ", "ｅｖｅ"):
        assert app.records.get("users", ref) == eve, ref
    with pytest.raises(NotFoundError, match="no user 'mallory'"):
        app.records.get("users", "mallory")
    with pytest.raises(NotFoundError):
        app.records.get("phonebook", "eve")  # only users have a name to look up


@pytest.mark.parametrize(
    "ref", ["0", "2147483648", str(2**63 - 1), str(2**63), "9" * 30, 2**63, -1, "٣"]
)
def test_ids_beyond_what_a_store_holds_are_not_found(app: App, ref: int | str) -> None:
    with pytest.raises(NotFoundError):
        app.records.get("users", ref)
    with pytest.raises(NotFoundError):
        app.records.delete("speeddials", ref)


# --- add, edit, delete ---------------------------------------------------------------------


def test_add_validates_and_normalises_under_the_instance_settings(app: App) -> None:
    entry = app.records.add("phonebook", {"displayname": "Pizza", "phone": "0991 123456"})
    assert isinstance(entry, PhonebookEntry)
    assert (entry.phone, entry.phone_e164) == ("0991 123456", "+49991123456")
    app.records.add("users", {"username": "jdoe"})
    private = app.records.add("phonebook", {"displayname": "Mum", "owner": "JDOE"})
    assert isinstance(private, PhonebookEntry) and private.owner == "jdoe"
    user = app.records.add("users", {"username": "Eve", "extension": "42"})
    assert isinstance(user, User)
    assert (user.username, user.extension, user.password_set, user.origin) == (
        "eve",
        "42",
        False,
        None,
    )
    with pytest.raises(RecordError) as bad:
        app.records.add("phonebook", {"displayname": ""})
    assert bad.value.field == "displayname"
    with pytest.raises(UsageError) as unknown:
        app.records.add("phonebook", {"displayname": "x", "colour": "red"})
    assert unknown.value.field == "colour"
    with pytest.raises(UsageError) as no_owner:
        app.records.add("phonebook", {"displayname": "x", "owner": "ghost"})
    assert no_owner.value.field == "owner"
    app.records.add("speeddials", {"code": "*1", "number": "1"})
    with pytest.raises(ConflictError) as taken:
        app.records.add("speeddials", {"code": "*1", "number": "2"})
    assert taken.value.field == "code"


@pytest.mark.parametrize("field", ["password", "pin"])
def test_secrets_are_not_taken_with_the_other_fields(app: App, field: str) -> None:
    with pytest.raises(UsageError) as exc:
        app.records.add("users", {"username": "x", field: "1234"})
    assert exc.value.field == field
    assert "1234" not in str(exc.value)
    app.records.add("users", {"username": "y"})
    with pytest.raises(UsageError):
        app.records.edit("users", "y", {field: "1234"})
    assert [u.username for u in app.records.list("users").items] == ["admin", "y"]


def test_edit_changes_only_the_given_fields(app: App) -> None:
    entry = app.records.add("phonebook", {"displayname": "Pizza", "phone": "+49 991 1"})
    result = app.records.edit("phonebook", entry.id, {"notes": "best in town"})
    assert result.warnings == []
    assert isinstance(result.record, PhonebookEntry)
    assert (result.record.notes, result.record.phone) == ("best in town", "+49 991 1")
    assert app.records.get("phonebook", entry.id) == result.record
    user = app.records.edit("users", "ADMIN", {"auth": "ldap"}).record
    assert isinstance(user, User) and user.auth == "ldap" and user.builtin
    with pytest.raises(UsageError, match="nothing to change"):
        app.records.edit("phonebook", entry.id, {})
    with pytest.raises(ProtectedRecordError):
        app.records.edit("users", "admin", {"username": "root"})


def test_editing_an_imported_record_warns_that_its_profile_will_overwrite_it(
    app: App, engine: Engine, tmp_path: Path
) -> None:
    _imported(engine, tmp_path)
    [entry] = app.records.list("phonebook").items
    result = app.records.edit("phonebook", entry.id, {"organisation": "by hand"})
    assert result.warnings == [
        "imported by profile 'office': its next run will overwrite hand edits of managed fields"
    ]
    assert result.record.origin == entry.origin
    assert result.model_dump(mode="json")["warnings"] == result.warnings
    # And so it does.
    run_profile(engine, "office")
    assert app.records.get("phonebook", entry.id).model_dump()["organisation"] == "pascom"


def test_delete_removes_the_record_but_never_the_admin(app: App) -> None:
    eve = app.records.add("users", {"username": "eve"})
    assert app.records.delete("users", "Eve") == eve
    with pytest.raises(NotFoundError):
        app.records.get("users", eve.id)
    with pytest.raises(ProtectedRecordError):
        app.records.delete("users", "admin")
    assert [u.username for u in app.records.list("users").items] == ["admin"]


# --- secrets -------------------------------------------------------------------------------


def test_set_secret_stores_only_a_hash(app: App, engine: Engine) -> None:
    eve = app.records.add("users", {"username": "eve"})
    app.records.set_secret("EVE", "password", "n3w pass")
    app.records.set_secret(eve.id, "pin", "4321")
    with engine.connect() as conn:
        row = conn.execute(select(users_table).where(users_table.c.id == eve.id)).one()
    assert row.password_hash != "n3w pass" and verify_secret(row.password_hash, "n3w pass")
    assert verify_secret(row.pin_hash, "4321")
    shown = app.records.get("users", eve.id)
    assert isinstance(shown, User) and shown.password_set and shown.pin_set
    assert "n3w pass" not in shown.model_dump_json()


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_secret_is_refused(app: App, value: str) -> None:
    app.records.add("users", {"username": "eve"})
    with pytest.raises(UsageError, match="an empty password is not allowed"):
        app.records.set_secret("eve", "password", value)
    with pytest.raises(UsageError, match="an empty PIN is not allowed"):
        app.records.set_secret("eve", "pin", value)
    shown = app.records.get("users", "eve")
    assert isinstance(shown, User) and not shown.password_set and not shown.pin_set


def test_a_pin_must_be_digits_and_the_user_must_exist(app: App) -> None:
    app.records.add("users", {"username": "eve"})
    with pytest.raises(RecordError) as exc:
        app.records.set_secret("eve", "pin", "12")
    assert exc.value.field == "pin"
    with pytest.raises(NotFoundError):
        app.records.set_secret("mallory", "password", "secret")
