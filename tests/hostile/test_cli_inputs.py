"""Malformed input at the command line: each gets one `error:` line and its documented
exit code, never a traceback, and changes nothing."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import PHONEBOOK_HEADER, Cli, phonebook_row, write_csv

BIG = str(2**63)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "store.db")


@pytest.fixture
def pb_csv(tmp_path: Path) -> Path:
    return write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, [phonebook_row("Anna", "+49 991 1")])


def _one_error_line(result: object, *words: str) -> None:
    err = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err and "Traceback" not in result.stdout  # type: ignore[attr-defined]
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for word in words:
        assert word in lines[0], lines[0]


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """The installed command in a child process: what an administrator's shell sees."""
    return subprocess.run(
        [sys.executable, "-m", "pbx_connector.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


# --- numbers too large for the store ------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("run", "show", BIG),
        ("runs", "--limit", BIG),
        ("phonebook", "delete", BIG),
        ("users", "edit", BIG, "displayname=x"),
        ("speeddials", "delete", BIG),
    ],
)
def test_ids_and_limits_beyond_64_bits_are_refused(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args, code=2)
    assert "Traceback" not in result.stderr
    # Refused when parsed (a usage error), or by the command: never sent to the store.
    assert "Invalid value" in result.stderr or result.stderr.startswith("error:")


# --- the database URL -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("db", "words"),
    [
        (" ", ("empty",)),
        ("sqlite://", ("in-memory",)),
        ("sqlite:///:memory:", ("in-memory",)),
        ("postgresql://user@localhost:notaport/db", ("not a database URL",)),
        ("nosuchdialect://x/y", ("cannot use database",)),
    ],
)
def test_bad_database_urls_are_refused(tmp_path: Path, db: str, words: tuple[str, ...]) -> None:
    result = run_cli("--db", db, "profile", "list", env={"PBX_CONNECTOR_HOME": str(tmp_path)})
    assert result.returncode == 2, result.stderr
    _one_error_line(result, *words)


def test_a_file_that_is_not_sqlite_is_named(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all, just text\n" * 200)
    result = run_cli(
        "--db", str(junk), "profile", "list", env={"PBX_CONNECTOR_HOME": str(tmp_path)}
    )
    assert result.returncode == 3
    _one_error_line(result, "not an SQLite database")
    assert junk.read_bytes().startswith(b"this is not a database")


def test_a_directory_as_the_store_is_refused(tmp_path: Path) -> None:
    result = run_cli(
        "--db", str(tmp_path), "profile", "list", env={"PBX_CONNECTOR_HOME": str(tmp_path)}
    )
    assert result.returncode == 2
    _one_error_line(result, "is a directory")


@pytest.mark.postgres
def test_a_bad_connect_timeout_is_one_error_line(tmp_path: Path, postgres_server: object) -> None:
    url = postgres_server.create_database("pbxc_badtimeout")  # type: ignore[attr-defined]
    try:
        bad = url + ("&" if "?" in url else "?") + "connect_timeout=soon"
        result = run_cli("--db", bad, "profile", "list", env={"PBX_CONNECTOR_HOME": str(tmp_path)})
        assert result.returncode in (2, 3)
        _one_error_line(result)
        assert "password" not in result.stderr.lower() or "***" in result.stderr
    finally:
        postgres_server.drop_database("pbxc_badtimeout")  # type: ignore[attr-defined]


# --- a store locked by another writer -------------------------------------------------------


@pytest.fixture
def locked_store(tmp_path: Path, pb_csv: Path) -> Iterator[Path]:
    db = tmp_path / "store.db"
    home = {"PBX_CONNECTOR_HOME": str(tmp_path / "home")}
    assert (
        run_cli(
            "--db",
            str(db),
            "profile",
            "create",
            "pb",
            "-t",
            "csv-phonebook",
            "--set",
            f"path={pb_csv}",
            env=home,
        ).returncode
        == 0
    )
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE settings SET value = value")
    try:
        yield db
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.parametrize(
    "args",
    [
        ("sync", "pb"),
        ("sync", "pb", "--dry-run"),
        ("profile", "set", "pb", "mode=update"),
        ("profile", "create", "other", "-t", "csv-phonebook", "--set", "path=/nonexistent.csv"),
        ("phonebook", "add", "displayname=Bob", "phone=123"),
        ("config", "default_region=AT"),
        ("profile", "delete", "pb"),
    ],
)
def test_every_write_on_a_locked_store_is_one_error_line(
    tmp_path: Path, locked_store: Path, args: tuple[str, ...]
) -> None:
    env = {"PBX_CONNECTOR_HOME": str(tmp_path / "home"), "PBX_CONNECTOR_BUSY_TIMEOUT": "0.2"}
    result = run_cli("--db", str(locked_store), *args, env=env)
    assert result.returncode == 3, result.stderr
    _one_error_line(result, "locked")


# --- profile import and export -----------------------------------------------------------


def test_profile_import_of_deeply_nested_json(cli: Cli, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    _one_error_line(cli("profile", "import", str(deep), code=2), "not a profile export")


def test_profile_import_of_a_binary_file(cli: Cli, tmp_path: Path) -> None:
    binary = tmp_path / "blob.bin"
    binary.write_bytes(bytes(range(256)) * 64)
    _one_error_line(cli("profile", "import", str(binary), code=2), "not a profile export")


def test_profile_import_of_a_huge_file(cli: Cli, tmp_path: Path) -> None:
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"format": "pbx-connector-profile", "x": "a" * 3_000_000}))
    _one_error_line(cli("profile", "import", str(huge), code=2), "larger than")


def test_profile_export_into_a_missing_directory_or_onto_one(
    cli: Cli, tmp_path: Path, pb_csv: Path
) -> None:
    cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={pb_csv}")
    _one_error_line(
        cli("profile", "export", "pb", "-o", str(tmp_path / "nope" / "pb.json"), code=2), "nope"
    )
    _one_error_line(cli("profile", "export", "pb", "-o", str(tmp_path), code=2))


# --- settings checked when set --------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ("max_delete=-5", ("max_delete",)),
        ("max_delete=nan%", ("max_delete",)),
        ("max_delete=150%", ("max_delete",)),
        ("max_delete=" + BIG, ("max_delete",)),
        ("key=nonexistent", ("nonexistent",)),
        ("path=", ("path",)),
        ("path=  ", ("path",)),
    ],
)
def test_profile_settings_are_checked_when_set(
    cli: Cli, pb_csv: Path, setting: str, words: tuple[str, ...]
) -> None:
    cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={pb_csv}")
    before = cli.json("profile", "show", "pb")
    _one_error_line(cli("profile", "set", "pb", setting, code=2), *words)
    assert cli.json("profile", "show", "pb") == before


def test_a_header_of_100000_columns_gives_a_short_message(cli: Cli, tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    wide.write_text(
        ",".join(f"c{i}" for i in range(100_000)) + "\n" + ",".join("x" * 100_000) + "\n"
    )
    cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={wide}")
    result = cli("sync", "pb", code=3)
    assert len(result.stderr) < 5_000
    report = cli.json("run", "show", "1")
    assert len(json.dumps(report)) < 10_000


# --- secrets ---------------------------------------------------------------------------------


def test_secret_settings_are_read_from_standard_input(cli: Cli) -> None:
    cli(
        "profile",
        "create",
        "dir",
        "-t",
        "ldap-phonebook",
        "--set",
        "uri=ldap://127.0.0.1:1",
        "--set",
        "base_dn=dc=example,dc=org",
        "--set",
        "bind_dn=cn=reader,dc=example,dc=org",
        "--set-secret",
        "bind_password",
        stdin="s3cret-from-stdin\n",
    )
    shown = cli.json("profile", "show", "dir")
    assert shown["secrets_set"] == ["bind_password"]
    assert "s3cret-from-stdin" not in json.dumps(shown)
    cli("profile", "set", "dir", "bind_password=-", stdin="another\n")
    _one_error_line(cli("profile", "set", "dir", "bind_password=-", stdin="\n", code=2), "empty")
    _one_error_line(
        cli("profile", "set", "dir", "--set-secret", "uri", stdin="x\n", code=2), "not a secret"
    )


def test_a_lost_instance_key_does_not_lock_the_administrator_out(cli: Cli, data_home: Path) -> None:
    cli(
        "profile",
        "create",
        "dir",
        "-t",
        "ldap-phonebook",
        "--set",
        "uri=ldap://127.0.0.1:1",
        "--set",
        "base_dn=dc=example,dc=org",
        "--set",
        "bind_dn=cn=reader,dc=example,dc=org",
        "--set-secret",
        "bind_password",
        stdin="old-secret\n",
    )
    # The key is lost: a new one is made on next use.
    from pbx_connector.store import secrets

    (data_home / secrets.KEY_FILE).unlink()
    secrets._load_key.cache_clear()
    listed = cli.json("profile", "list")
    assert listed[0]["secrets_unreadable"] is True
    assert "unreadable" in cli("profile", "show", "dir").stdout
    run = cli("sync", "dir", code=3)
    assert "cannot be decrypted" in run.stderr
    cli("profile", "set", "dir", "--set-secret", "bind_password", stdin="new-secret\n")
    shown = cli.json("profile", "show", "dir")
    assert shown["secrets_unreadable"] is False and shown["secrets_set"] == ["bind_password"]
    cli("profile", "delete", "dir")
    assert cli.json("profile", "list") == []


# --- files on disk ---------------------------------------------------------------------------


def test_the_store_and_data_directory_are_private(tmp_path: Path, pb_csv: Path) -> None:
    home = tmp_path / "fresh-home"
    result = run_cli(
        "profile",
        "create",
        "pb",
        "-t",
        "csv-phonebook",
        "--set",
        f"path={pb_csv}",
        env={"PBX_CONNECTOR_HOME": str(home)},
    )
    assert result.returncode == 0, result.stderr
    assert run_cli("sync", "pb", env={"PBX_CONNECTOR_HOME": str(home)}).returncode == 0
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for path in home.glob("pbx-connector.db*"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    # A store opened wider than that gets a warning.
    os.chmod(home / "pbx-connector.db", 0o644)
    listed = run_cli("profile", "list", env={"PBX_CONNECTOR_HOME": str(home)})
    assert "warning:" in listed.stderr and "readable by other users" in listed.stderr
