"""Usernames and direct numbers through the whole product: an import, the command line
and authentication agree on who a user is and what number they have."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import USERS_HEADER, Cli, write_csv


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "store.db")


def test_a_compatibility_form_of_a_username_is_that_user(cli: Cli) -> None:
    cli("users", "add", "username=carol", "displayname=Carol")
    cli("users", "passwd", "carol", stdin="Carol-pw-1\n")
    cli("auth", "settings", "failure_delay_ms=0")
    accepted = cli("auth", "check", "ｃａｒｏｌ", stdin="Carol-pw-1\n")
    assert accepted.stdout.strip() == "accepted"
    # The audit log names the one spelling the store knows.
    log = cli.json("auth", "log")
    assert log[0]["username"] == "carol" and log[0]["outcome"] == "accepted"
    # A look-alike with a Cyrillic letter is nobody, whatever the password.
    rejected = cli("auth", "check", "саrol", stdin="Carol-pw-1\n", code=1)
    assert rejected.stdout.strip() == "rejected"
    # And the command line finds the user under either spelling.
    assert "Updated user" in cli("users", "edit", "ＣＡＲＯＬ", "displayname=C.").stdout
    assert cli.json("users", "list")[-1]["displayname"] == "C."


def test_a_look_alike_of_an_existing_user_cannot_be_added(cli: Cli) -> None:
    cli("users", "add", "username=carol")
    refused = cli("users", "add", "username=саrol", code=2)
    assert "error:" in refused.stderr and "username" in refused.stderr


def test_direct_numbers_and_extension_digits_in_a_users_import(cli: Cli, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "u.csv",
        [*USERS_HEADER, "phone"],
        [
            ["anna", "Anna", "", "", "", "", "+49 89 3005-201"],
            ["bert", "Bert", "", "", "", "", "+49 89 3005202"],
        ],
    )
    cli("profile", "create", "u", "-t", "csv-users", "--set", f"path={path}")
    cli("profile", "variables", "u", "phone={{ phone }}", "extension={{ phone | extension }}")
    first = cli("sync", "u")
    assert "no extension could be derived" in first.stderr  # bert's number has no '-'
    users = {u["username"]: u for u in cli.json("users", "list")}
    assert users["anna"]["extension"] == "201" and users["anna"]["phone_e164"] == "+49893005201"
    assert users["bert"]["extension"] is None and users["bert"]["phone_e164"] == "+49893005202"
    # A company whose direct numbers end in the extension says how many digits it has.
    cli("profile", "set", "u", "extension_digits=3")
    cli("sync", "u")
    users = {u["username"]: u for u in cli.json("users", "list")}
    assert users["bert"]["extension"] == "202"
    refused = cli("profile", "set", "u", "extension_digits=many", code=2)
    assert "extension_digits" in refused.stderr
