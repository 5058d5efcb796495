"""Rejections cannot be told apart by how long they take.

Every rejection (unknown user, disabled user, locked user, wrong password, a directory
that hangs) takes at least the same floor: `failure_delay_ms`, and while a directory is
configured, `timeout` for each of its servers, the longest a directory check may take.
The durations are lower bounds that `sleep` guarantees; nothing here is a speed limit.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pbx_connector.authentication import authenticate, rejection_floor
from pbx_connector.store import auth_store
from pbx_connector.store.db import open_store_engine
from tests.helpers import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    cli = Cli(tmp_path / "cli.db")
    cli("users", "add", "username=ivan")
    cli("users", "passwd", "ivan", stdin="Ivan-pw-1\n")
    cli("users", "add", "username=dora", "enabled=no")
    cli("users", "add", "username=lena", "auth=ldap")
    return cli


@pytest.fixture
def engine(cli: Cli) -> Iterator[Engine]:
    eng = open_store_engine(f"sqlite:///{cli.db}")
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def hung_uri() -> Iterator[str]:
    """Two directory servers that take the connection and never answer (a hung or
    overloaded server): the kernel completes the handshake, nobody reads."""
    socks = []
    for _ in range(2):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        socks.append(sock)
    try:
        yield " ".join(f"ldap://127.0.0.1:{s.getsockname()[1]}" for s in socks)
    finally:
        for sock in socks:
            sock.close()


def timed(engine: Engine, username: str, password: str) -> tuple[str, float]:
    start = time.monotonic()
    result = authenticate(engine, username, password)
    assert not result.accepted
    return result.reason, time.monotonic() - start


def floor(engine: Engine) -> float:
    with engine.connect() as conn:
        return rejection_floor(auth_store.load(conn))


def test_every_rejection_takes_the_directory_budget(
    cli: Cli, engine: Engine, hung_uri: str
) -> None:
    cli(
        "auth", "settings", f"uri={hung_uri}", "security=none",
        "bind_user=uid=%,ou=people,dc=example,dc=test", "timeout=0.2",
        "failure_delay_ms=50", "lockout_failures=1",
    )  # fmt: skip
    budget = 0.4  # timeout × 2 servers, more than failure_delay_ms
    assert floor(engine) == pytest.approx(budget)
    assert timed(engine, "ghost", "x")[0] == "unknown_user"  # and now locked
    # The LDAP user waits for the hung directory; everybody else waits as long.
    durations = {
        "directory_unavailable": timed(engine, "lena", "Lena-pw-1"),
        "wrong password": timed(engine, "ivan", "wrong"),
        "disabled": timed(engine, "dora", "Dora-pw-1"),
        "locked": timed(engine, "ghost", "x"),
        "unknown": timed(engine, "nobody", "x"),
    }
    reasons = {what: reason for what, (reason, _) in durations.items()}
    assert reasons == {
        "directory_unavailable": "directory_unavailable",
        "wrong password": "bad_password",
        "disabled": "disabled",
        "locked": "locked",
        "unknown": "unknown_user",
    }
    for what, (_, seconds) in durations.items():
        assert seconds >= budget, (what, seconds)


def test_the_failure_delay_is_the_floor_when_it_is_longer(
    cli: Cli, engine: Engine, hung_uri: str
) -> None:
    cli(
        "auth", "settings", f"uri={hung_uri.split()[0]}", "security=none",
        "bind_user=%@example.test", "timeout=0.1", "failure_delay_ms=350",
    )  # fmt: skip
    assert floor(engine) == pytest.approx(0.35)
    for username, password in (("nobody", "x"), ("lena", "Lena-pw-1"), ("ivan", "wrong")):
        assert timed(engine, username, password)[1] >= 0.35


def test_a_hung_directory_is_reported_and_not_counted(
    cli: Cli, engine: Engine, hung_uri: str
) -> None:
    cli(
        "auth", "settings", f"uri={hung_uri}", "security=none", "timeout=0.2",
        "bind_user=uid=%,ou=people,dc=example,dc=test", "lockout_failures=1",
    )  # fmt: skip
    out = cli("auth", "test", "lena", stdin="Lena-pw-1\n", code=1).stdout
    assert "result: rejected (directory_unavailable)" in out
    assert out.count("contacting ldap://127.0.0.1:") >= 1
    # Not the user's failure: with lockout_failures=1 a counted failure would lock.
    assert timed(engine, "lena", "Lena-pw-1")[0] == "directory_unavailable"
    with engine.connect() as conn:
        assert auth_store.get_lockout(conn, "lena").failures == 0
