"""What must be unique among the records of a target, and how a conflict is worded."""

from __future__ import annotations

from typing import Any

import pytest

from pbx_connector.domain.identity import describe_identity, identities


def test_user_is_identified_by_username() -> None:
    assert identities("users", {"username": "max", "extension": None}) == [("username", "max")]


def test_user_is_identified_by_the_skeleton_of_the_username() -> None:
    # Two names that look alike are one identity: the second is a conflict.
    assert identities("users", {"username": "үи"}) == identities("users", {"username": "уи"})
    assert identities("users", {"username": "үи"}) == [("username", "yи")]
    assert identities("users", {"username": "ivan"}) != identities("users", {"username": "иван"})


def test_user_with_an_extension_also_claims_it() -> None:
    found = identities("users", {"username": "max", "extension": "30000"})
    assert found == [("username", "max"), ("extension", "30000")]


@pytest.mark.parametrize("extension", [None, ""])
def test_user_without_an_extension_claims_none(extension: str | None) -> None:
    assert identities("users", {"username": "max", "extension": extension}) == [("username", "max")]


def test_speed_dial_is_identified_by_its_code() -> None:
    assert identities("speeddials", {"code": "*1", "number": "0991 12345"}) == [("code", "*1")]


def test_phonebook_entry_is_owner_name_and_number() -> None:
    values = {"displayname": "Max", "phone": "0991 12345", "owner": "jdoe", "email": "x@y.z"}
    assert identities("phonebook", values) == [("entry", "jdoe", "Max", "0991 12345")]


@pytest.mark.parametrize("owner", [None, ""])
def test_global_phonebook_entry_has_an_empty_owner(owner: str | None) -> None:
    values = {"displayname": "Max", "phone": "0991 12345", "owner": owner}
    assert identities("phonebook", values) == [("entry", "", "Max", "0991 12345")]


def test_same_name_in_different_phonebooks_are_different_identities() -> None:
    entry: dict[str, Any] = {"displayname": "Max", "phone": "0991 12345"}
    mine = identities("phonebook", {**entry, "owner": "jdoe"})
    global_ = identities("phonebook", {**entry, "owner": ""})
    other_number = identities("phonebook", {**entry, "phone": "0991 99"})
    assert len({*mine, *global_, *other_number}) == 3


def test_missing_values_are_empty_strings_not_none() -> None:
    assert identities("users", {}) == [("username", "")]
    assert identities("speeddials", {}) == [("code", "")]
    assert identities("phonebook", {}) == [("entry", "", "", "")]


@pytest.mark.parametrize(
    ("identity", "text"),
    [
        (("username", "max"), "username 'max'"),
        (("username", "yи"), "a username that looks like 'yи'"),
        (("extension", "30000"), "extension '30000'"),
        (("code", "*1"), "code '*1'"),
        (
            ("entry", "", "Max", "0991 12345"),
            "an entry 'Max' with number '0991 12345' in the global phonebook",
        ),
        (
            ("entry", "jdoe", "Max", ""),
            "an entry 'Max' with number '' in jdoe's private phonebook",
        ),
    ],
)
def test_describe_identity(identity: tuple[str, ...], text: str) -> None:
    assert describe_identity(identity) == text
