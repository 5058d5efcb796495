"""A PBX's view of pbx-connector: `serve` on a loopback port with its store on SQLite, a
Kamailio proxy that asks it for callers' names, and SIPp as the phones.

``connector`` starts `serve` and creates a token of the role `lookup`; tests put records
in the store with ``connector.cli`` (the CLI in this process, on the same SQLite file).
``proxy`` is Kamailio with tests/pbx/kamailio.cfg, pointed at ``connector`` and at the
callee of ``phones``. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from pbx_connector.store import db as store_db
from tests.helpers import Cli, free_port
from tests.servers import kamailio, sipp
from tests.servers.kamailio import KamailioFactory, KamailioServer
from tests.servers.sipp import PhonesFactory, SippPhones

HERE = Path(__file__).parent
KAMAILIO_CFG = HERE / "kamailio.cfg"
CALLER_SCENARIO = HERE / "uac.xml"
CALLEE_SCENARIO = HERE / "uas.xml"
SERVE_START_TIMEOUT = 60.0
SERVE_STOP_TIMEOUT = 20.0

kamailio_factory = kamailio.kamailio_factory
sipp_phones_factory = sipp.sipp_phones_factory


@pytest.fixture
def sip_tools() -> None:
    """Skip (under CI: fail) a test that needs Kamailio and SIPp where they are missing."""
    kamailio.require_kamailio()
    sipp.require_sipp()


@dataclass
class Connector:
    url: str
    token: str
    cli: Cli
    log_file: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    def freeze(self) -> None:
        """A hung serve: it still accepts connections (the kernel does), answers nothing."""
        self.process.send_signal(signal.SIGSTOP)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
        try:
            self.process.wait(timeout=SERVE_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=SERVE_STOP_TIMEOUT)


@pytest.fixture
def connector(sip_tools: None, tmp_path: Path, data_home: Path) -> Iterator[Connector]:
    # sip_tools first: without the tools, there is no point in starting serve.
    db = tmp_path / "store.db"
    cli = Cli(db)
    token = cli("token", "create", "kamailio", "--role", "lookup").stdout.strip()
    port = free_port()
    log_file = tmp_path / "serve.log"
    args = [
        sys.executable,
        "-m",
        "pbx_connector.cli",
        "--db",
        str(db),
        "serve",
        "--port",
        str(port),
    ]
    if setpriv := shutil.which("setpriv"):
        args = [setpriv, "--pdeathsig", "TERM", "--", *args]
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, store_db.ENV_HOME: str(data_home)},
        )
    url = f"http://127.0.0.1:{port}"
    server = Connector(url, token, cli, log_file, proc)
    try:
        _wait_for_serve(server)
        yield server
    finally:
        server.stop()
    text = log_file.read_text(errors="replace")
    assert "Traceback" not in text, text


def _wait_for_serve(server: Connector) -> None:
    deadline = time.monotonic() + SERVE_START_TIMEOUT
    while True:
        with contextlib.suppress(httpx.TransportError):
            httpx.get(f"{server.url}/api/v1/openapi.json", timeout=2)
            return
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"serve did not start:\n{server.log_file.read_text()}")
        time.sleep(0.05)


@pytest.fixture
def phones(sipp_phones_factory: PhonesFactory) -> SippPhones:
    return sipp_phones_factory(CALLER_SCENARIO, CALLEE_SCENARIO)


@pytest.fixture
def proxy(
    kamailio_factory: KamailioFactory, connector: Connector, phones: SippPhones
) -> KamailioServer:
    return kamailio_factory(
        KAMAILIO_CFG,
        LOOKUP_URL=connector.url,
        TOKEN=connector.token,
        CALLEE_PORT=str(phones.callee_port),
    )
