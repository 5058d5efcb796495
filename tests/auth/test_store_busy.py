"""A store that another writer keeps locked: the auth commands say so on one line and
exit with code 3; they never print a traceback, and never answer accepted or rejected."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pbx_connector.store import db as store_db
from tests.helpers import Cli

BUSY_MS = 200  # instead of 10 s: how long the commands wait for the other writer


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    cli = Cli(tmp_path / "cli.db")
    cli("users", "add", "username=ivan")
    cli("users", "passwd", "ivan", stdin="Ivan-pw-1\n")
    cli("auth", "settings", "failure_delay_ms=0")
    original = store_db._sqlite_pragmas

    def quick(dbapi_conn: Any, record: Any) -> None:
        original(dbapi_conn, record)
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        cur.close()

    monkeypatch.setattr(store_db, "_sqlite_pragmas", quick)
    return cli


@pytest.fixture
def other_writer(cli: Cli) -> Iterator[sqlite3.Connection]:
    """Another process's write transaction, held for the whole test."""
    conn = sqlite3.connect(cli.db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def assert_store_error(result: Any) -> None:
    assert result.exit_code == 3, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout in ("", "Password: \n")
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning: ")]
    assert len(errors) == 1 and errors[0].startswith("error: "), result.stderr
    assert "busy" in errors[0] and "locked" in errors[0]
    assert "Traceback" not in result.stderr


def test_auth_commands_on_a_locked_store(cli: Cli, other_writer: sqlite3.Connection) -> None:
    assert_store_error(cli("auth", "check", "ivan", stdin="Ivan-pw-1\n", code=None))
    assert_store_error(cli("auth", "test", "ivan", stdin="Ivan-pw-1\n", code=None))
    assert_store_error(cli("auth", "settings", "timeout=3", code=None))
    # Reading goes on beside a writer.
    assert cli.json("auth", "log") == []
    assert cli.json("auth", "settings")["timeout"] == "5"


def test_the_store_works_again_when_the_writer_is_done(cli: Cli) -> None:
    holder = sqlite3.connect(cli.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    assert_store_error(cli("auth", "check", "ivan", stdin="Ivan-pw-1\n", code=None))
    holder.execute("ROLLBACK")
    holder.close()
    assert cli("auth", "check", "ivan", stdin="Ivan-pw-1\n").stdout == "accepted\n"
    assert [row["reason"] for row in cli.json("auth", "log")] == ["accepted"]
