"""The command line as a user types it, against a real SQLite file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PHONEBOOK_HEADER, USERS_HEADER, Cli, phonebook_row, write_csv

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "phonebook.csv"


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "cli.db")


@pytest.fixture
def pb(cli: Cli, tmp_path: Path) -> Path:
    path = tmp_path / "pb.csv"
    path.write_bytes(EXAMPLE.read_bytes())
    cli("profile", "create", "pb", "--template", "csv-phonebook", "--set", f"path={path}")
    return path


def test_templates_lists_the_whole_catalogue(cli: Cli) -> None:
    out = cli("templates").stdout
    for name in (
        "ucs-users",
        "ad-users",
        "ldap-users",
        "csv-users",
        "ad-phonebook",
        "csv-phonebook",
        "ldap-phonebook",
        "ad-speeddials",
        "csv-speeddials",
        "ldap-speeddials",
        "peer-phonebook",
    ):
        assert name in out
    data = cli.json("templates")
    available = {t["name"] for t in data if t["available"]}
    assert available == {t["name"] for t in data}
    peer = next(t for t in data if t["name"] == "peer-phonebook")
    assert peer["source"] == "peer" and peer["key"] == "id"
    ad = next(t for t in data if t["name"] == "ad-users")
    assert ad["key"] == "objectGUID"
    assert {"domain", "server", "bind_user", "bind_password", "configure_authentication"} <= {
        s["name"] for s in ad["settings"]
    }
    assert next(s for s in ad["settings"] if s["name"] == "bind_password")["secret"]


def test_the_readme_demo(cli: Cli, pb: Path) -> None:
    preview = cli.json("preview", "pb", "--limit", "2")
    assert preview[0] == {
        "displayname": "Max Muster - pascom [30000]",
        "phone": "+4999112345",
        "givenname": "Max",
        "surname": "Muster",
        "organisation": "pascom",
        "email": "",
        "mobile": "",
        "homephone": "",
        "fax": "+4999112399",
    }
    assert len(preview) == 2
    dry = cli("sync", "pb", "--dry-run")
    assert "Would create phonebook entry 'Jürgen Müller' (line 3)" in dry.stdout
    assert cli.json("phonebook", "list") == []
    applied = cli.json("sync", "pb")
    assert applied["status"] == "ok" and applied["dry_run"] is False
    assert applied["counts"]["created"] == 6
    assert set(applied) >= {"status", "dry_run", "counts", "errors", "started", "finished"}
    listing = cli.json("phonebook", "list")
    assert len(listing) == 6
    first = listing[0]
    assert first["displayname"] == "Max Muster - pascom [30000]"
    assert first["phone_e164"] == "+4999112345"
    assert first["origin"]["profile"] == "pb"
    assert "Jürgen Müller" in cli("phonebook", "list").stdout


def test_check_exits_1_only_when_changes_are_pending(cli: Cli, pb: Path) -> None:
    cli("sync", "pb", "--check", code=1)
    cli("sync", "pb")
    cli("sync", "pb", "--check", code=0)


def test_failed_and_aborted_runs_exit_3(cli: Cli, pb: Path) -> None:
    cli("sync", "pb")
    write_csv(pb, PHONEBOOK_HEADER, [])
    result = cli("sync", "pb", code=3)
    assert "aborted, nothing changed" in result.stderr
    assert "hint: to run it anyway: pbx-connector sync pb --force" in result.stderr
    report = cli.json("sync", "pb", code=3)
    assert report["status"] == "aborted"
    pb.write_bytes(b"displayname,phone\n\xe4\n")
    result = cli("sync", "pb", code=3)
    assert "0xe4" in result.stderr and "line 2" in result.stderr
    assert len(cli.json("phonebook", "list")) == 6
    runs = cli.json("runs", "pb")
    assert [r["status"] for r in runs[:3]] == ["failed", "aborted", "aborted"]
    shown = cli.json("run", "show", str(runs[0]["id"]))
    assert shown["errors"][0]["line"] == 2


def test_usage_errors_exit_2(cli: Cli, tmp_path: Path) -> None:
    r = cli("profile", "create", "x", "--template", "nope", code=2)
    assert "unknown template 'nope'" in r.stderr
    r = cli("profile", "create", "x", "--template", "peer-phonebook", code=2)
    assert "needs the setting 'url'" in r.stderr
    r = cli("profile", "create", "x", "--template", "ad-users", code=2)
    assert "needs the setting 'domain'" in r.stderr
    r = cli(
        "profile",
        "create",
        "x",
        "--template",
        "ldap-users",
        "--set",
        "uri=ldap://h",
        "--set",
        "base_dn=dc=x",
        "--set",
        "filter=(uid=*",
        code=2,
    )
    assert "invalid LDAP filter" in r.stderr
    r = cli("profile", "create", "x", "--template", "csv-phonebook", code=2)
    assert "needs the setting 'path'" in r.stderr
    # The core says what is missing; the command line adds how to give it here.
    assert "hint: give it with --set path=…" in r.stderr
    r = cli(
        "profile",
        "create",
        "x",
        "--template",
        "csv-phonebook",
        "--set",
        "path=a.csv",
        "--set",
        "delimiter=ab",
        code=2,
    )
    assert "delimiter" in r.stderr
    cli("sync", "nope", code=2)
    cli("profile", "show", "nope", code=2)


def test_profile_settings_variables_and_prefilter(cli: Cli, pb: Path) -> None:
    cli("profile", "set", "pb", "mode=update", "delimiter=;", "max_delete=20")
    shown = cli.json("profile", "show", "pb")
    assert shown["mode"] == "update"
    assert shown["settings"]["delimiter"] == ";" and shown["settings"]["max_delete"] == "20"
    r = cli("profile", "set", "pb", "colour=blue", code=2)
    assert "unknown setting 'colour'" in r.stderr
    cli("profile", "set", "pb", "delimiter=,")
    cli("profile", "variables", "pb", "notes={{ organisation }} / {{ givenname|upper }}", "fax=")
    variables = cli.json("profile", "variables", "pb")
    assert variables["notes"] == "{{ organisation }} / {{ givenname|upper }}"
    assert variables["fax"] == ""
    r = cli("profile", "variables", "pb", "notes={{ oops", code=2)
    assert "notes" in r.stderr
    r = cli("profile", "variables", "pb", "displayname=", code=2)
    assert "required" in r.stderr
    r = cli("profile", "prefilter", "pb", "organisation ==", code=2)
    assert "pre-filter" in r.stderr
    cli("profile", "prefilter", "pb", 'organisation == "pascom"')
    assert cli("profile", "prefilter", "pb").stdout.strip() == 'organisation == "pascom"'
    report = cli.json("sync", "pb")
    assert report["counts"]["created"] == 2 and report["counts"]["skipped"] == 4
    entry = cli.json("phonebook", "list")[0]
    assert entry["notes"] == "pascom / MAX" and entry["fax"] == ""


def test_export_import_round_trip_without_secrets(cli: Cli, pb: Path, tmp_path: Path) -> None:
    cli("profile", "variables", "pb", "notes={{ organisation }}")
    out = tmp_path / "pb.json"
    cli("profile", "export", "pb", "-o", str(out))
    exported = json.loads(out.read_text())
    assert exported["format"] == "pbx-connector-profile"
    cli("profile", "import", str(out), "--name", "copy")
    a, b = cli.json("profile", "show", "pb"), cli.json("profile", "show", "copy")
    for k in ("template", "mode", "settings", "variables", "prefilter"):
        assert a[k] == b[k]
    cli("profile", "import", str(out), code=2)  # the name exists
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    assert "not a profile export" in cli("profile", "import", str(bad), code=2).stderr
    assert [p["name"] for p in cli.json("profile", "list")] == ["copy", "pb"]
    cli("profile", "delete", "copy")
    assert [p["name"] for p in cli.json("profile", "list")] == ["pb"]


def test_create_empties_default_variables_the_file_lacks(cli: Cli, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "short.csv", ["displayname", "phone"], [["A", "+49 991 1"]])
    r = cli("profile", "create", "s", "-t", "csv-phonebook", "--set", f"path={path}")
    assert "variable 'email' left empty" in r.stdout
    assert cli.json("sync", "s")["counts"]["created"] == 1


def test_records_by_hand(cli: Cli) -> None:
    r = cli("phonebook", "add", "displayname=Pizza Roma", "phone=0991 123456")
    new_id = r.stdout.split()[-1].rstrip(".")
    [entry] = cli.json("phonebook", "list")
    assert entry["phone_e164"] == "+49991123456" and entry["origin"] is None
    cli("phonebook", "edit", new_id, "notes=best in town")
    assert cli.json("phonebook", "list")[0]["notes"] == "best in town"
    r = cli("phonebook", "add", "displayname=", code=2)
    assert "displayname" in r.stderr
    r = cli("phonebook", "add", "displayname=x", "colour=red", code=2)
    assert "'colour' is not a field" in r.stderr
    cli("phonebook", "delete", new_id)
    assert cli.json("phonebook", "list") == []
    cli("users", "add", "username=Eve", "extension=42")
    eve = next(u for u in cli.json("users", "list") if u["username"] == "eve")
    assert eve["extension"] == "42" and eve["password_set"] is False
    cli("users", "edit", "eve", "--auth", "ldap")
    assert next(u for u in cli.json("users", "list") if u["username"] == "eve")["auth"] == "ldap"
    r = cli("users", "add", "username=x", "password=secret", code=2)
    assert "users passwd" in r.stderr
    cli("users", "passwd", "eve", stdin="n3w-pass\n")
    assert next(u for u in cli.json("users", "list") if u["username"] == "eve")["password_set"]
    cli("users", "passwd", "eve", stdin="\n", code=2)
    r = cli("users", "delete", "admin", code=2)
    assert "admin" in r.stderr
    cli("speeddials", "add", "code=*1", "number=+49 991 1", "displayname=Pizza")
    assert cli.json("speeddials", "list")[0]["number_e164"] == "+499911"
    cli("speeddials", "add", "code=*1", "number=2", code=2)


def test_users_sync_with_bad_rows_prints_line_and_field(cli: Cli, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "u.csv",
        USERS_HEADER,
        [
            ["anna", "Anna", "", "", "anna@example.com", "10"],
            ["bad user", "Bad", "", "", "", "11"],
        ],
    )
    cli("profile", "create", "u", "-t", "csv-users", "--set", f"path={path}")
    r = cli("sync", "u")
    assert "error: line 3, field 'username'" in r.stderr
    assert "1 created" in r.stdout


def test_private_phonebook_listing_by_owner(cli: Cli, tmp_path: Path) -> None:
    cli("users", "add", "username=jdoe")
    cli("phonebook", "add", "displayname=Mum", "phone=+49 991 7", "owner=jdoe")
    cli("phonebook", "add", "displayname=Global", "phone=+49 991 8")
    assert [e["displayname"] for e in cli.json("phonebook", "list", "--owner", "jdoe")] == ["Mum"]
    assert [e["displayname"] for e in cli.json("phonebook", "list", "--owner", "")] == ["Global"]
    cli("phonebook", "add", "displayname=X", "owner=ghost", code=2)


def test_config_sets_the_default_region(cli: Cli, tmp_path: Path) -> None:
    assert cli.json("config")["default_region"] == "DE"
    cli("config", "default_region=AT")
    cli("phonebook", "add", "displayname=Wien", "phone=01 234 5678")
    assert cli.json("phonebook", "list")[0]["phone_e164"] == "+4312345678"
    cli("config", "default_region=ZZ", code=2)


def test_db_upgrade(cli: Cli) -> None:
    out = cli("db", "upgrade").stdout
    assert "revision" in out


def _run_cli(args: list[str], env_home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PBX_CONNECTOR_HOME": str(env_home)}
    env.pop("PBX_CONNECTOR_DB", None)
    return subprocess.run(
        [sys.executable, "-m", "pbx_connector.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_installed_command_uses_the_data_directory_and_draws_no_bar_when_piped(
    tmp_path: Path,
) -> None:
    home = tmp_path / "data"
    rows = [phonebook_row(f"P{i}", f"+49 991 {100000 + i}") for i in range(2500)]
    path = write_csv(tmp_path / "big.csv", PHONEBOOK_HEADER, rows)
    r = _run_cli(
        ["profile", "create", "big", "-t", "csv-phonebook", "--set", f"path={path}"], home, tmp_path
    )
    assert r.returncode == 0, r.stderr
    r = _run_cli(["sync", "big"], home, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (home / "pbx-connector.db").exists()
    assert "2500 created" in r.stdout
    assert "\x1b[" not in r.stdout + r.stderr  # no progress bar or colours when piped
    r = _run_cli(["sync", "nope"], home, tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("error: ")
