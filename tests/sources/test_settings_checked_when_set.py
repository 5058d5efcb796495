"""Every setting of a file source is checked when it is set, whatever location and format
the profile reads now, with a message naming it; settings that only make sense apart
(basic and bearer credentials, a share and a URL) are refused together. Through the CLI
and the core, against a real store; nothing here talks to a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pbx_connector.errors import ConfigError
from pbx_connector.service import App
from tests.helpers import PHONEBOOK_HEADER, Cli, phonebook_row, write_csv

TOKEN = "tok-3f9a-never-shown"
PASSWORD = "pw-71c2-never-shown"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "cli.db")


@pytest.fixture
def csv_file(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, [phonebook_row("Max", "+49 991 1")])


@pytest.fixture
def local(cli: Cli, csv_file: Path) -> Cli:
    """A CLI whose store holds `pb`: a local CSV file, read as CSV."""
    cli("profile", "create", "pb", "--template", "csv-phonebook", "--set", f"path={csv_file}")
    return cli


@pytest.fixture
def app(engine: Engine) -> App:
    return App(engine)


def stored(cli: Cli) -> dict[str, object]:
    shown = cli.json("profile", "show", "pb")
    return {"settings": shown["settings"], "secrets_set": shown["secrets_set"]}


# --- one setting, checked when it is set ----------------------------------------------------


@pytest.mark.parametrize(
    ("assignment", "words"),
    [
        # The share's settings, on a profile that reads a local file.
        ("share_port=abc", "a number from 1 to 65535"),
        ("share=notunc", "must be a UNC path"),
        ("share_user=a\\b\\c", "invalid share user"),
        ("timeout=abc", "positive number of seconds"),
        ("timeout=0", "positive number of seconds"),
        # The URL's, with no URL set.
        ("max_size=abc", "positive number of MiB"),
        ("ca_file=relative.pem", "must be an absolute path"),
        ("ca_file=/nonexistent/ca.pem", "cannot read the CA file"),
        # The xlsx format's, on a profile that reads CSV.
        ("header_row=0", "whole number from 1"),
        ("sheet=a:b", "is not a sheet name"),
        # A URL that is none.
        ("url=ftp://fileserver/x.csv", "https:// or http://"),
    ],
)
def test_a_bad_value_is_refused_when_set_naming_the_setting(
    local: Cli, assignment: str, words: str
) -> None:
    before = stored(local)
    result = local("profile", "set", "pb", assignment, code=2)
    setting = assignment.partition("=")[0]
    assert f'field "{setting}"' in result.stderr and words in result.stderr, result.stderr
    assert "Updated" not in result.stdout
    assert stored(local) == before


def test_a_csv_setting_is_checked_on_an_xlsx_profile(local: Cli) -> None:
    local("profile", "set", "pb", "format=xlsx")
    before = stored(local)
    result = local("profile", "set", "pb", "encoding=no-such-codec", code=2)
    assert 'field "encoding"' in result.stderr and "invalid CSV encoding" in result.stderr
    assert stored(local) == before


def test_the_error_names_the_setting_typed_not_an_older_one(local: Cli) -> None:
    """Before, a bad share_port was kept, and the error came when use_share was set."""
    local("profile", "set", "pb", "share_port=abc", code=2)
    local("profile", "set", "pb", "share=\\\\fileserver\\exports", "share_user=pbx")
    result = local("profile", "set", "pb", "use_share=yes", "path=test\\address.csv")
    assert result.exit_code == 0
    assert stored(local)["settings"]["share_port"] == "445"  # type: ignore[index]


def test_good_and_empty_settings_of_other_locations_are_kept_and_the_file_still_read(
    local: Cli,
) -> None:
    local(
        "profile",
        "set",
        "pb",
        "share=\\\\fileserver\\exports",
        "share_port=4450",
        "share_user=EXAMPLE\\pbx",
        "timeout=2.5",
        "max_size=0.5",
        "sheet=People",
        "header_row=3",
    )
    # Empty settings are not checked: a profile may be saved before all are set.
    local("profile", "set", "pb", "share_port=", "timeout=", "max_size=", "ca_file=")
    settings = stored(local)["settings"]
    assert settings["share"] == "\\\\fileserver\\exports"  # type: ignore[index]
    assert settings["share_port"] == "" and settings["sheet"] == "People"  # type: ignore[index]
    report = local.json("sync", "pb")
    assert report["status"] == "ok" and report["counts"]["created"] == 1


def test_a_local_path_is_not_checked_as_a_path_inside_a_share(local: Cli, tmp_path: Path) -> None:
    odd = tmp_path / "a?b.csv"  # a name a share could not hold
    write_csv(odd, PHONEBOOK_HEADER, [phonebook_row("Max", "+49 991 1")])
    local("profile", "set", "pb", f"path={odd}")
    assert local.json("sync", "pb")["status"] == "ok"


# --- settings that do not go together -------------------------------------------------------


def test_create_refuses_url_user_with_url_token(cli: Cli) -> None:
    result = cli(
        "profile",
        "create",
        "pb",
        "--template",
        "csv-phonebook",
        "--set",
        "url=https://files.example.test/pb.csv",
        "--set",
        "url_user=pbx",
        "--set-secret",
        "url_token",
        stdin=TOKEN + "\n",
        code=2,
    )
    assert 'field "url_token"' in result.stderr
    assert "url_user and url_password (basic authentication) or url_token" in result.stderr
    assert TOKEN not in result.stdout + result.stderr
    assert cli.json("profile", "list") == []


def test_set_refuses_a_token_beside_a_user_and_keeps_the_profile(cli: Cli) -> None:
    cli(
        "profile",
        "create",
        "pb",
        "--template",
        "csv-phonebook",
        "--set",
        "url=https://files.example.test/pb.csv",
        "--set",
        "url_user=pbx",
    )
    before = stored(cli)
    result = cli("profile", "set", "pb", "--set-secret", "url_token", stdin=TOKEN + "\n", code=2)
    assert 'field "url_token"' in result.stderr and TOKEN not in result.stderr
    assert stored(cli) == before
    # Both changed at once is one way to switch to a token.
    cli("profile", "set", "pb", "url_user=", "--set-secret", "url_token", stdin=TOKEN + "\n")
    assert stored(cli)["secrets_set"] == ["url_token"]


def test_a_password_without_a_user_is_refused(app: App) -> None:
    url = "https://files.example.test/pb.csv"
    with pytest.raises(ConfigError) as caught:
        app.profiles.create("pb", "csv-phonebook", settings={"url": url, "url_password": PASSWORD})
    assert caught.value.field == "url_user"
    assert "url_password is set but url_user is empty" in caught.value.message
    assert PASSWORD not in str(caught.value)
    assert app.profiles.list() == []
    # A user alone is fine (the server may say it needs a password), the password after it.
    app.profiles.create("pb", "csv-phonebook", settings={"url": url, "url_user": "pbx"})
    assert app.profiles.update("pb", {"url_password": PASSWORD}).secrets_set == ["url_password"]
    # Emptying the user while the password stays is the same mistake.
    with pytest.raises(ConfigError) as caught:
        app.profiles.update("pb", {"url_user": ""})
    assert caught.value.field == "url_user" and PASSWORD not in str(caught.value)
    assert app.profiles.get("pb").settings["url_user"] == "pbx"


def test_a_share_and_a_url_together_are_refused(local: Cli) -> None:
    local("profile", "set", "pb", "url=https://files.example.test/pb.csv")
    before = stored(local)
    result = local("profile", "set", "pb", "use_share=yes", code=2)
    assert 'field "use_share"' in result.stderr
    assert "use_share=yes and url are both set" in result.stderr
    assert stored(local) == before
    # Switching in one change is fine.
    local("profile", "set", "pb", "use_share=yes", "url=", "share=\\\\fileserver\\exports")
    assert stored(local)["settings"]["use_share"] == "yes"  # type: ignore[index]
    result = local("profile", "set", "pb", "url=https://files.example.test/pb.csv", code=2)
    assert "use_share=yes and url are both set" in result.stderr


def test_import_refuses_a_share_and_a_url_together(app: App, tmp_path: Path) -> None:
    export = {
        "format": "pbx-connector-profile",
        "version": 1,
        "name": "pb",
        "template": "csv-phonebook",
        "settings": {
            "use_share": "yes",
            "share": "\\\\fileserver\\exports",
            "path": "pb.csv",
            "url": "https://files.example.test/pb.csv",
        },
    }
    with pytest.raises(ConfigError) as caught:
        app.profiles.import_(json.dumps(export))
    assert caught.value.field == "use_share"
    assert app.profiles.list() == []
