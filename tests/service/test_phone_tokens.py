"""Phone tokens: the per-user secret of a desk phone. A `phone` token opens the global
phonebook and its own user's private phonebook (in the directories and the caller-name
lookup), never another user's, and nothing else of the API; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from pbx_connector.errors import NotFoundError, PermissionDenied, UsageError
from pbx_connector.models.tokens import Principal
from pbx_connector.service import App
from pbx_connector.service.deskphones import DirectoryQuery


@pytest.fixture
def app(engine: Engine) -> App:
    core = App(engine)
    add = core.records.add
    add("phonebook", {"displayname": "Global Garage", "phone": "+49 991 1001"})
    add("users", {"username": "alice", "displayname": "Alice A", "extension": "201"})
    add("users", {"username": "bob", "displayname": "Bob B", "extension": "202"})
    add("phonebook", {"displayname": "Alice's dentist", "phone": "+49 991 4004", "owner": "alice"})
    add("phonebook", {"displayname": "Bob's friend", "phone": "+49 991 5005", "owner": "bob"})
    # The same number privately for alice and globally: her own name for it wins.
    add("phonebook", {"displayname": "Mum", "phone": "+49 991 1001", "owner": "alice"})
    return core


def _phone(app: App, owner: str = "alice") -> Principal:
    return app.tokens.authenticate(
        app.tokens.create(f"{owner}'s phone", role="phone", owner=owner).token
    )


def _names(app: App, query: DirectoryQuery) -> list[str]:
    entries, _ = app.deskphones.entries(query)
    return [e.name for e in entries]


def test_a_phone_token_is_created_for_a_named_user_and_acts_as_them(app: App) -> None:
    with pytest.raises(UsageError, match="name that user as its owner") as refused:
        app.tokens.create("desk", role="phone")
    assert refused.value.field == "owner"
    with pytest.raises(NotFoundError):
        app.tokens.create("desk", role="phone", owner="nobody")
    # Any enabled user may have one, with no role of their own (alice has none).
    phone = _phone(app, "Alice")
    assert (phone.username, phone.role, phone.can_read, phone.can_write) == (
        "alice",
        "phone",
        False,
        False,
    )


def test_a_phone_token_stops_working_when_its_user_is_disabled(app: App) -> None:
    token = app.tokens.create("desk", role="phone", owner="bob").token
    app.tokens.authenticate(token)
    app.records.edit("users", "bob", {"enabled": "no"})
    assert not app.tokens.list()[0].active
    with pytest.raises(Exception, match="not a valid API token"):
        app.tokens.authenticate(token)


def test_a_phone_token_opens_its_own_users_private_phonebook_and_no_other(app: App) -> None:
    phone = _phone(app)
    own = ["Alice's dentist", "Mum", "Global Garage"]
    # Without user=, and with the user named by username, id or extension: the same.
    alice_id = str(app.records.get("users", "alice").id)
    for asked in (None, "alice", "ALICE", alice_id, "201", " alice "):
        assert _names(app, DirectoryQuery(user=asked, caller=phone)) == own, asked
    for other in ("bob", "202", str(app.records.get("users", "bob").id), "nobody"):
        with pytest.raises(PermissionDenied, match="only its own user's") as denied:
            app.deskphones.entries(DirectoryQuery(user=other, caller=phone))
        assert denied.value.http_status == 403
    # The export and a search are the same directory.
    exported = b"".join(app.deskphones.export("csv", DirectoryQuery(caller=phone)).parts)
    assert b"Alice's dentist" in exported and b"Bob's friend" not in exported
    assert _names(app, DirectoryQuery(search="friend", caller=phone)) == []
    # A lookup token or the CLI (no caller) opens whichever user is asked for.
    pbx = app.tokens.authenticate(app.tokens.create("pbx", role="lookup").token)
    assert _names(app, DirectoryQuery(user="bob", caller=pbx))[0] == "Bob's friend"
    assert _names(app, DirectoryQuery(user="bob"))[0] == "Bob's friend"
    assert _names(app, DirectoryQuery(caller=pbx)) == ["Global Garage"]


def test_the_lookup_of_a_phone_token_is_its_own_users(app: App) -> None:
    phone = _phone(app)
    assert app.lookup.find("0991 1001", caller=phone).name == "Mum"
    assert app.lookup.name("0991 1001", user="201", caller=phone) == "Mum"
    with pytest.raises(NotFoundError):
        app.lookup.find("0991 5005", caller=phone)  # bob's private entry
    with pytest.raises(PermissionDenied):
        app.lookup.name("0991 5005", user="bob", caller=phone)
    # Others look up for the user they name, and for nobody without one.
    assert app.lookup.name("0991 1001") == "Global Garage"
    assert app.lookup.name("0991 5005", user="bob") == "Bob's friend"


def test_a_phone_token_reads_nothing_else_and_checks_no_password(app: App) -> None:
    phone = _phone(app)
    with pytest.raises(PermissionDenied, match="phone token may only read its user's"):
        app.tokens.require_reader(phone)
    with pytest.raises(PermissionDenied):
        app.tokens.require_admin(phone)
    app.records.set_secret("alice", "password", "Alice-pw-5521")
    with pytest.raises(PermissionDenied):
        app.auth.check_for(phone, "alice", "Alice-pw-5521")
    assert app.auth.log("alice").items == []
