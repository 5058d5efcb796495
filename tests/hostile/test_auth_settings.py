"""Hostile values for the numeric authentication settings, through the command line.

Each one must be refused when it is set (exit code 2, one `error:` line naming the setting,
no traceback) and leave the stored settings as they were: `nan`, infinities, negative
numbers, zero where it makes no sense, fractions where a whole number is needed, numbers
of 2**63 and more (which overflow a 64-bit integer later), other spellings Python's own
number parsing accepts (`1_000`, `1e3`, non-ASCII digits), and text.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pbx_connector.store import auth_store
from tests.helpers import Cli

HUGE = (str(2**63), str(2**64), "9" * 400)
#: Spellings that are not plain decimal numbers, for every numeric setting.
NOT_NUMBERS = ("nan", "inf", "-inf", "1e3", "1_000", "0x10", "٣", "", "five")

BAD: list[tuple[str, str]] = [
    *((key, value) for key in auth_store.NUMBERS for value in NOT_NUMBERS + HUGE),
    ("lockout_failures", "0"),
    ("lockout_failures", "-1"),
    ("lockout_failures", "5.5"),
    ("lockout_failures", "1001"),
    ("lockout_seconds", "0"),
    ("lockout_seconds", "-60"),
    ("lockout_seconds", "0.5"),
    ("lockout_seconds", "86401"),
    ("failure_delay_ms", "-1"),
    ("failure_delay_ms", "250.5"),
    ("failure_delay_ms", "10001"),
    ("timeout", "0"),
    ("timeout", "0.05"),
    ("timeout", "-5"),
    ("timeout", "61"),
]

GOOD: list[tuple[str, str, float]] = [
    ("lockout_failures", "1", 1),
    ("lockout_failures", "1000", 1000),
    ("lockout_seconds", "1", 1),
    ("lockout_seconds", "86400", 86400),
    ("failure_delay_ms", "0", 0),
    ("failure_delay_ms", "10000", 10000),
    ("timeout", "0.1", 0.1),
    ("timeout", " 2.5 ", 2.5),
    ("timeout", "60", 60),
]


def _store(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("auth-settings") / "cli.db")
    cli("db", "upgrade")
    return cli


@pytest.fixture(scope="module")
def untouched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cli, dict[str, str]]:
    """One store for the refusals (creating the schema costs more than a check), and its
    settings: a refused value must leave them as they are."""
    cli = _store(tmp_path_factory)
    return cli, cli.json("auth", "settings")


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    return _store(tmp_path_factory)


def assert_refused(exit_code: int, stderr: str, key: str) -> None:
    assert exit_code == 2, (exit_code, stderr)
    assert "Traceback" not in stderr
    # One error line; a warning about the store's file permissions may come before it.
    lines = [line for line in stderr.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert key in lines[0]


@pytest.mark.parametrize(("key", "value"), BAD)
def test_a_bad_number_is_refused_when_set(
    untouched: tuple[Cli, dict[str, str]], key: str, value: str
) -> None:
    cli, before = untouched
    result = cli("auth", "settings", f"{key}={value}", code=None)
    assert_refused(result.exit_code, result.stderr, key)
    assert result.stdout == ""
    assert cli.json("auth", "settings") == before


@pytest.mark.parametrize(("key", "value", "number"), GOOD)
def test_numbers_in_range_are_taken(cli: Cli, key: str, value: str, number: float) -> None:
    cli("auth", "settings", f"{key}={value}")
    assert float(cli.json("auth", "settings")[key]) == number


def test_one_bad_value_keeps_the_others_from_being_saved(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "cli.db")
    result = cli(
        "auth", "settings", "lockout_failures=3", "lockout_seconds=inf", code=None
    )  # fmt: skip
    assert_refused(result.exit_code, result.stderr, "lockout_seconds")
    assert cli.json("auth", "settings")["lockout_failures"] == "5"


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    """The real process, not the test runner: what an administrator sees."""
    command = Path(sys.executable).with_name("pbx-connector")
    env = {**os.environ, "PBX_CONNECTOR_HOME": str(tmp_path / "home")}
    proc = subprocess.run(
        [str(command), "--db", str(tmp_path / "p.db"), "auth", "settings", "lockout_failures=nan"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert_refused(proc.returncode, proc.stderr, "lockout_failures")
