"""`pbx-connector lookup` as an administrator types it, and lookup tokens on the command
line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "cli.db")


def test_lookup_prints_the_name_and_where_it_came_from(cli: Cli) -> None:
    cli("users", "add", "username=alice", "extension=101", "displayname=Alice Adams")
    cli("phonebook", "add", "displayname=Jürgen Müller", "phone=+49 991 12345")
    cli("phonebook", "add", "displayname=Mum", "phone=0991 12345", "owner=alice")

    out = cli("lookup", "0991 12345").stdout.splitlines()
    assert out[0] == "Jürgen Müller"
    assert out[1].startswith("from the global phonebook: phonebook 1, phone +49 991 12345")
    assert cli("lookup", "+49 (0)991 12345", "--user", "alice").stdout.startswith("Mum\n")
    assert cli("lookup", "101").stdout.startswith("Alice Adams\n")

    found = cli.json("lookup", "0991 12345", "--user", "101")
    assert (found["name"], found["source"], found["owner"]) == ("Mum", "private", "alice")
    assert found["asked"] == "+4999112345"

    unknown = cli("lookup", "0991 99999", code=1)
    assert unknown.stdout == ""
    assert "no name for the number '0991 99999'" in unknown.stderr
    cli("lookup", "anonymous", code=1)
    refused = cli("lookup", " ", code=2)
    assert "give a number" in refused.stderr


def test_suffix_matching_is_set_with_config(cli: Cli) -> None:
    cli("phonebook", "add", "displayname=Wien", "phone=+43 991 12345")
    cli("lookup", "+41 991 12345", code=1)
    cli("config", "lookup_match=suffix", "lookup_suffix_digits=7")
    out = cli("lookup", "+41 991 12345").stdout
    assert out.startswith("Wien\n") and "by its last digits" in out
    refused = cli("config", "lookup_suffix_digits=2", code=2)
    assert "from 4 to 15" in refused.stderr


def test_a_lookup_token_on_the_command_line(cli: Cli) -> None:
    token = cli("token", "create", "asterisk", "--role", "lookup").stdout.strip()
    assert token.startswith("pbxc_")
    [listed] = cli.json("token", "list")
    assert (listed["role"], listed["active"]) == ("lookup", True)
    refused = cli("token", "create", "x", "--role", "root", code=2)
    assert "admin, viewer, lookup" in refused.stderr
