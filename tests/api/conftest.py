"""`pbx-connector serve` itself, started on a loopback port for each test, on SQLite and
on the throwaway PostgreSQL, with an admin token; tests talk to it over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port


@dataclass
class Server:
    url: str
    db: str
    home: Path
    admin_token: str

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return run_cli(self.db, self.home, *args, stdin=stdin)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def run_cli(db: str, home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "pbx_connector.cli", "--db", db, *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, "PBX_CONNECTOR_HOME": str(home)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "home"
    token = run_cli(db_url, home, "token", "create", "tests", "--role", "admin").stdout.strip()
    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "pbx_connector.cli", "--db", db_url, "serve", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PBX_CONNECTOR_HOME": str(home)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/api/v1/openapi.json", timeout=2)
            break
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.close()
                raise RuntimeError((tmp_path / "serve.log").read_text()) from None
            time.sleep(0.1)
    try:
        yield Server(url, db_url, home, token)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        text = (tmp_path / "serve.log").read_text()
        assert "Traceback" not in text, text
