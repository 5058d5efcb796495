"""What the records' pages ask of the core beyond list/get/add/edit/delete: the fields a
form offers (with the authentication methods the core accepts), and who has a private
phonebook. On both stores."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from pbx_connector.errors import NotFoundError, RecordError
from pbx_connector.models.records import PhonebookOwner
from pbx_connector.service import App
from pbx_connector.service.records import record_fields, record_target


@pytest.fixture
def app(engine: Engine) -> App:
    return App(engine)


def test_the_fields_of_a_form_are_the_targets_fields_without_secrets() -> None:
    for target in ("users", "phonebook", "speeddials"):
        fields = record_fields(target)
        assert [f.name for f in fields] == record_target(target).fields
        assert not {f.name for f in fields} & {"password", "pin"}
    users = {f.name: f for f in record_fields("users")}
    assert users["username"].required and users["username"].kind == "username"
    assert users["email"].kind == "email" and not users["email"].required
    assert users["enabled"].kind == "bool" and users["roles"].kind == "roles"
    assert users["displayname"].max_length == 80
    phonebook = {f.name: f for f in record_fields("phonebook")}
    assert phonebook["notes"].multiline and not phonebook["displayname"].multiline
    assert phonebook["phone"].kind == "phone" and phonebook["owner"].kind == "owner"
    speeddials = {f.name: f for f in record_fields("speeddials")}
    assert speeddials["code"].required and speeddials["number"].required
    with pytest.raises(NotFoundError):
        record_fields("contacts")


def test_the_authentication_choices_are_exactly_what_the_core_accepts(app: App) -> None:
    auth = next(f for f in record_fields("users") if f.name == "auth")
    assert auth.choices == ["internal", "ldap", "none"]
    for n, method in enumerate(auth.choices):
        user = app.records.add("users", {"username": f"u{n}", "auth": method})
        assert user.auth == method
    with pytest.raises(RecordError) as refused:
        app.records.add("users", {"username": "x", "auth": "kerberos"})
    assert refused.value.field == "auth"
    # Only the auth field has a fixed list of values.
    assert [f.name for f in record_fields("users") if f.choices] == ["auth"]


def test_phonebook_owners_are_the_users_with_private_entries(app: App) -> None:
    assert app.records.phonebook_owners() == []
    for name in ("zoe", "eve", "bob"):
        app.records.add("users", {"username": name})
    app.records.add("phonebook", {"displayname": "Global"})
    app.records.add("phonebook", {"displayname": "Zoe's", "owner": "zoe"})
    app.records.add("phonebook", {"displayname": "Eve's 1", "owner": "Eve"})
    app.records.add("phonebook", {"displayname": "Eve's 2", "owner": "eve"})
    assert app.records.phonebook_owners() == [
        PhonebookOwner(username="eve", entries=2),
        PhonebookOwner(username="zoe", entries=1),
    ]
