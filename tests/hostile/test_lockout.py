"""Lockout under a parallel attack: many processes guess one user's password at once.

Every guess runs in its own process (forked, so nothing but the store and the directory is
shared), against a private slapd that logs every bind, on an SQLite file and on
PostgreSQL. What must hold:

- no more than `lockout_failures` guesses reach the directory (slapd's own log counts
  the binds; the audit log's reasons say the same);
- the failure counter ends at the number of failures, however many ran at once;
- every attempt has exactly one row in the audit log, and no attempt dies with an error.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable
from functools import partial
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from pbx_connector.authentication import authenticate
from pbx_connector.cli import app
from pbx_connector.store import auth_store
from pbx_connector.store.db import open_store_engine
from pbx_connector.store.tables import auth_attempts
from tests.servers.slapd import ALICE, KNOWN_USERS, LOGLEVEL_ENV, SlapdServer, directory_tree

LIMIT = 5
GUESSES = 20
#: 10 processes with 5 threads each: 50 guesses, up to 30 of them in flight together (at
#: most 3 per process: the PostgreSQL test server takes 50 connections in all).
PROCESSES, THREADS, AT_ONCE = 10, 5, 3
WAIT = 60.0  # seconds; only a hung test ever gets near it

pytestmark = pytest.mark.slapd


def pbx(url: str, *args: str) -> None:
    result = CliRunner().invoke(app, ["--db", url, *args])
    assert result.exit_code == 0, (result.stdout, result.stderr)


@pytest.fixture
def directory(
    slapd_factory: Callable[..., SlapdServer], monkeypatch: pytest.MonkeyPatch
) -> SlapdServer:
    """A private slapd whose log has a line for every bind."""
    monkeypatch.setenv(LOGLEVEL_ENV, "stats")
    return slapd_factory(entries=partial(directory_tree, users=len(KNOWN_USERS), contacts=0))


@pytest.fixture
def store(db_url: str, directory: SlapdServer) -> str:
    """alice (method ldap) and a bind template pointing at `directory`."""
    pbx(db_url, "users", "add", f"username={ALICE.uid}", "auth=ldap")
    pbx(
        db_url, "auth", "settings", f"uri={directory.uri}", "security=none",
        f"bind_user=uid=%,ou=people,{directory.suffix}", "failure_delay_ms=0",
    )  # fmt: skip
    return db_url


def binds_seen(server: SlapdServer, dn: str, expected: int) -> int:
    """How many binds as `dn` slapd logged (its log is written as it goes: wait a little
    for the last lines, never for more than `expected`)."""
    needle = f'BIND dn="{dn}"'
    deadline = time.monotonic() + 5
    while True:
        count = server.log_file.read_text(errors="replace").count(needle)
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def _guesser(url: str, threads: int, ready: Barrier, results: Any) -> None:
    """One attacking process: `threads` wrong guesses for alice at the same moment."""
    try:
        engine = open_store_engine(url)
        with engine.connect() as conn:  # connect before the race, not during it
            auth_store.load(conn)
        ready.wait(WAIT)
        reasons: list[str] = []
        at_once = threading.Semaphore(AT_ONCE)

        def guess() -> None:
            try:
                with at_once:
                    result = authenticate(engine, ALICE.uid, "wrong", origin="hostile")
                reasons.append(result.reason)
            except BaseException:
                reasons.append("error: " + traceback.format_exc())

        workers = [threading.Thread(target=guess) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(WAIT)
        results.put(reasons)
    except BaseException:
        results.put(["error: " + traceback.format_exc()])


def attack(url: str, processes: int, threads: int = 1) -> Counter[str]:
    """`processes` × `threads` wrong guesses for alice, all released at once; the reasons."""
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Barrier(processes)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_guesser, args=(url, threads, ready, results)) for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    reasons: Counter[str] = Counter()
    try:
        for _ in procs:
            reasons.update(results.get(timeout=WAIT))
    finally:
        for proc in procs:
            proc.join(WAIT)
            if proc.is_alive():
                proc.kill()
    errors = [r for r in reasons if r.startswith("error")]
    assert not errors, errors[0]
    return reasons


def lockout_row(url: str) -> auth_store.Lockout:
    engine = open_store_engine(url)
    try:
        with engine.connect() as conn:
            return auth_store.get_lockout(conn, ALICE.uid)
    finally:
        engine.dispose()


def audit_reasons(url: str) -> Counter[str]:
    engine = open_store_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(auth_attempts.c.reason).where(auth_attempts.c.username == ALICE.uid)
            )
            return Counter(row.reason for row in rows)
    finally:
        engine.dispose()


def test_parallel_guesses_never_exceed_the_limit(store: str, directory: SlapdServer) -> None:
    pbx(store, "auth", "settings", f"lockout_failures={LIMIT}", "lockout_seconds=600")
    reasons = attack(store, GUESSES)

    # Exactly LIMIT guesses were checked; the rest were refused without a bind.
    assert reasons == Counter({"bad_password": LIMIT, "locked": GUESSES - LIMIT})
    assert binds_seen(directory, ALICE.dn(directory.suffix), LIMIT) == LIMIT
    # One audit row per attempt, with the same reasons.
    assert audit_reasons(store) == reasons
    lock = lockout_row(store)
    assert (lock.failures, lock.level) == (LIMIT, 1)
    assert lock.locked_until is not None
    # The lock holds for the right password too.
    engine = open_store_engine(store)
    try:
        assert authenticate(engine, ALICE.uid, ALICE.password or "").reason == "locked"
    finally:
        engine.dispose()


def test_parallel_failures_are_all_counted(store: str, directory: SlapdServer) -> None:
    guesses = PROCESSES * THREADS
    pbx(store, "auth", "settings", f"lockout_failures={guesses + 1}")
    reasons = attack(store, PROCESSES, THREADS)

    assert reasons == Counter({"bad_password": guesses})
    assert binds_seen(directory, ALICE.dn(directory.suffix), guesses) == guesses
    assert audit_reasons(store) == reasons
    assert lockout_row(store).failures == guesses
    # One more failure reaches the limit and locks.
    engine = open_store_engine(store)
    try:
        assert authenticate(engine, ALICE.uid, "wrong").reason == "bad_password"
        assert authenticate(engine, ALICE.uid, ALICE.password or "").reason == "locked"
        with engine.connect() as conn:
            assert auth_store.get_lockout(conn, ALICE.uid).level == 1
    finally:
        engine.dispose()
