"""What `serve` does as it starts: tell the administrator of a fresh store how to sign in
the first time, and carry out the runs a stopped service left queued."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from pbx_connector.service import App
from pbx_connector.store.tables import runs as runs_table
from tests.api.conftest import run_cli
from tests.helpers import PHONEBOOK_HEADER, free_port, phonebook_row, write_csv


@contextmanager
def serving(db: str, home: Path, stderr: int, *args: str) -> Iterator[str]:
    """`serve` on a free port with its stderr on `stderr`; yields its URL once it answers."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pbx_connector.cli",
            "--db",
            db,
            "serve",
            "--port",
            str(port),
            *list(args),
        ],
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        env={**os.environ, "PBX_CONNECTOR_HOME": str(home)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                httpx.get(f"{url}/login", timeout=2)
                break
            except httpx.TransportError:
                assert proc.poll() is None, "serve stopped"
                assert time.monotonic() < deadline, "serve did not answer"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _read_pty(fd: int) -> str:
    """What the terminal received so far."""
    chunks: list[bytes] = []
    os.set_blocking(fd, False)
    while True:
        try:
            data = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace")


def _password_from(text: str) -> str:
    lines = [line.strip() for line in text.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("First sign-in"))
    return next(line for line in lines[start + 1 :] if line)


def test_a_fresh_store_on_a_terminal_shows_a_one_time_admin_password(
    db_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    main, side = pty.openpty()
    try:
        with serving(db_url, home, side) as url:
            time.sleep(0.3)
            first = _read_pty(main)
        password = _password_from(first)
        assert f"open {url}/ and sign in as 'admin'" in first
        assert len(password) == 20 and password.isalnum()
        checked = run_cli(db_url, home, "auth", "check", "admin", stdin=password + "\n")
        assert "accepted" in checked.stdout.lower()
        # A second start: the admin has a password now, none is made or shown.
        with serving(db_url, home, side):
            time.sleep(0.3)
            second = _read_pty(main)
        assert "First sign-in" not in second and password not in second
        assert "Serving" in second
        again = run_cli(db_url, home, "auth", "check", "admin", stdin=password + "\n")
        assert "accepted" in again.stdout.lower()
    finally:
        os.close(main)
        os.close(side)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_without_a_terminal_no_password_is_made_and_the_command_is_named(
    db_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    log = tmp_path / "serve.log"
    with open(log, "w") as out, serving(db_url, home, out.fileno()):
        pass
    text = log.read_text()
    assert "'pbx-connector users passwd admin'" in text and "First sign-in" not in text
    listed = json.loads(run_cli(db_url, home, "users", "list", "--json").stdout)
    admin = next(u for u in listed if u["username"] == "admin")
    assert admin["password_set"] is False


def test_queued_runs_left_by_a_stopped_service_run_at_start_and_stale_ones_are_dropped(
    db_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    rows = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(3)]
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)
    run_cli(db_url, home, "profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={path}")
    core = App.open(db_url)
    fresh = core.runs.request("pb", trigger="api").id
    stale = core.runs.request("pb", dry_run=True, trigger="api").id
    with core.transaction() as conn:
        conn.execute(
            update(runs_table)
            .where(runs_table.c.id == stale)
            .values(started_at=datetime.now(UTC) - timedelta(hours=2))
        )
    log = tmp_path / "serve.log"
    with open(log, "w") as out, serving(db_url, home, out.fileno()):
        deadline = time.monotonic() + 60
        while core.runs.get(fresh).status in ("queued", "running"):
            assert time.monotonic() < deadline, "the queued run was not carried out"
            time.sleep(0.2)
    assert core.runs.get(fresh).status == "ok"
    assert core.runs.get(fresh).counts.created == 3
    dropped = core.runs.get(stale)
    assert dropped.status == "interrupted" and "stopped before it ran it" in dropped.message
    listed = run_cli(db_url, home, "phonebook", "list", "--json").stdout
    assert "Entry 2" in listed
    core.engine.dispose()


def test_several_workers_answer_from_one_store_and_stop_together(
    db_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    rows = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(3)]
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)
    run_cli(db_url, home, "profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={path}")
    token = run_cli(db_url, home, "token", "create", "t", "--role", "admin").stdout.strip()
    log = tmp_path / "serve.log"
    with open(log, "w") as out, serving(db_url, home, out.fileno(), "--workers", "2") as url:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as api:
            run = api.post("/api/v1/profiles/pb/runs", json={}).json()
            deadline = time.monotonic() + 60
            while api.get(f"/api/v1/runs/{run['id']}").json()["status"] in ("queued", "running"):
                assert time.monotonic() < deadline, "the run did not end"
                time.sleep(0.2)
            # Every request, whichever worker takes it, sees what the run wrote.
            totals = {
                api.get("/api/v1/phonebook", params={"search": "entry"}).json()["total"]
                for _ in range(20)
            }
            assert totals == {3}
        workers = {
            line for line in log.read_text().splitlines() if "Started server process" in line
        }
        assert len(workers) == 2, log.read_text()
        # Each worker runs uvloop and httptools: on asyncio's loop the workers' socket
        # leaves Nagle's algorithm on, and every keep-alive request after the first
        # waited ~40 ms for the client's delayed ACK.
        for line in workers:
            pid = line.rsplit("[", 1)[1].split("]", 1)[0]
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "uvloop" in maps and "httptools" in maps, line
    text = log.read_text()
    assert "Traceback" not in text, text
    # The workers stopped with their parent: nothing answers on the port any more.
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/login", timeout=2)
