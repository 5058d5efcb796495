"""`records.private_phonebooks()`: every private phonebook a face may offer to open or to
start, by username, with its number of entries. On both stores."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from pbx_connector.models.records import PhonebookOwner
from pbx_connector.service import App


@pytest.fixture
def app(engine: Engine) -> App:
    return App(engine)


def test_every_user_is_offered_with_the_entries_of_their_phonebook(app: App) -> None:
    assert app.records.private_phonebooks() == [PhonebookOwner(username="admin", entries=0)]
    for name in ("zoe", "eve", "bob"):
        app.records.add("users", {"username": name})
    app.records.add("phonebook", {"displayname": "Global"})
    app.records.add("phonebook", {"displayname": "Zoe's", "owner": "zoe"})
    app.records.add("phonebook", {"displayname": "Eve's 1", "owner": "Eve"})
    app.records.add("phonebook", {"displayname": "Eve's 2", "owner": "eve"})
    assert app.records.private_phonebooks() == [
        PhonebookOwner(username="admin", entries=0),
        PhonebookOwner(username="bob", entries=0),
        PhonebookOwner(username="eve", entries=2),
        PhonebookOwner(username="zoe", entries=1),
    ]
    # Only the owners with entries are phonebook_owners(); every user is offered here.
    assert [o.username for o in app.records.phonebook_owners()] == ["eve", "zoe"]


def test_a_phonebook_whose_owner_is_no_user_any_more_is_still_offered(app: App) -> None:
    app.records.add("users", {"username": "eve"})
    app.records.add("phonebook", {"displayname": "Eve's", "owner": "eve"})
    app.records.delete("users", "eve")
    assert app.records.private_phonebooks() == [
        PhonebookOwner(username="admin", entries=0),
        PhonebookOwner(username="eve", entries=1),
    ]
