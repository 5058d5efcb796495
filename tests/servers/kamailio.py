"""Throwaway Kamailio SIP proxies for the test suite.

``start_kamailio(directory, template, values)`` fills the ``@NAME@`` placeholders of a
configuration template (``SIP_PORT`` is chosen here: a free loopback UDP port), runs
``kamailio`` in the foreground with that file and waits until it answers a SIP
``OPTIONS`` request; ``KamailioServer.stop()`` ends it. The ``kamailio_factory`` fixture
starts any number for one test and stops them afterwards.

Why it looks the way it does (Kamailio 5.6, Debian 12):

* ``-DD``: the main process stays in the foreground (this process owns it) and forks
  its workers; ``-E`` logs to stderr, which goes to ``kamailio.log`` in the directory.
  ``-w`` (working directory), ``-Y`` (runtime directory) and ``-P`` (pid file) point
  into the directory, so nothing of the system's Kamailio (``/etc/kamailio``,
  ``/run/kamailio``, its service) is used; ``-m``/``-M`` keep its memory small.
* It runs as the invoking user (root in CI: without ``-u``/``-g`` Kamailio keeps its
  user, and it only reads and writes files below the directory, which that user made).
* It is started in a session of its own, so ``stop()`` reaches the workers too
  (``SIGTERM`` to the main process, which ends them; ``SIGKILL`` to the group if that
  takes too long), and ``setpriv --pdeathsig`` ends it if the test process dies.
* Placeholders are ``@NAME@`` rather than ``$NAME`` or ``{name}``, which Kamailio's own
  syntax uses; a placeholder left unfilled is an error, not a silent literal.
* The fixture skips the test when Kamailio or its ``http_client`` module (Debian's
  ``kamailio-utils-modules``) is missing, unless the environment variable CI is set:
  there a missing server is a broken setup and fails, like the other servers here.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.sipp import free_udp_port

HOST = "127.0.0.1"
# Debian puts the modules in /usr/lib/<multiarch triplet>/kamailio/modules.
MODULE_GLOB = "/usr/lib/*/kamailio/modules"
REQUIRED_MODULES = {
    "http_client": "kamailio-utils-modules",
    "uac": "kamailio",
}
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
START_ATTEMPTS = 3
LOG_TAIL_LINES = 40
_PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def find_kamailio() -> str | None:
    return shutil.which("kamailio") or shutil.which("kamailio", path=os.pathsep.join(SBIN_DIRS))


def kamailio_unavailable_reason() -> str | None:
    """Why a private Kamailio with the modules of the tests cannot run (None when it can)."""
    if find_kamailio() is None:
        return "Kamailio is not installed (Debian package kamailio)"
    module_dirs = [Path(p) for p in sorted(Path("/").glob(MODULE_GLOB.lstrip("/")))]
    for module, package in REQUIRED_MODULES.items():
        if not any((d / f"{module}.so").is_file() for d in module_dirs):
            return f"Kamailio's {module} module is not installed (Debian package {package})"
    return None


def require_kamailio() -> None:
    """Skip (or, under CI, fail) the current test when Kamailio cannot run."""
    reason = kamailio_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; run scripts/test.sh to install it")
    pytest.skip(reason)


@dataclass
class KamailioServer:
    directory: Path
    config_file: Path
    sip_port: int
    log_file: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def log(self) -> str:
        try:
            return self.log_file.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        proc = self.process
        if proc is None:
            return
        self.process = None
        if proc.returncode is None:
            proc.terminate()
            _wait_unreaped(proc.pid, STOP_TIMEOUT)
        # The workers share the main process's group (its own session). Whatever is left
        # of it is ended while the main process is at most a zombie, so the group id
        # still names only these processes.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=STOP_TIMEOUT)


def _wait_unreaped(pid: int, timeout: float) -> None:
    """Wait until ``pid`` has exited, without reaping it (it stays a zombie)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        except ChildProcessError:
            return
        time.sleep(0.02)


def render(template: Path, values: Mapping[str, str]) -> str:
    text = template.read_text(encoding="utf-8")
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    left = sorted(set(_PLACEHOLDER.findall(text)))
    if left:
        raise ValueError(f"{template}: no value for {', '.join(left)}")
    return text


def start_kamailio(directory: Path, template: Path, values: Mapping[str, str]) -> KamailioServer:
    """A Kamailio running ``template`` filled with ``values`` (and ``SIP_PORT``)."""
    binary = find_kamailio()
    if binary is None:
        raise RuntimeError("kamailio is not installed")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "run").mkdir(exist_ok=True)
    error = ""
    for attempt in range(START_ATTEMPTS):
        port = free_udp_port()
        config = directory / "kamailio.cfg"
        config.write_text(render(template, {**values, "SIP_PORT": str(port)}), encoding="utf-8")
        server = KamailioServer(directory, config, port, directory / f"kamailio-{attempt}.log")
        error = _launch(server, binary)
        if not error:
            return server
        server.stop()
        # Another process may have taken the port between the choice and the bind.
        if "Address already in use" not in error:
            break
    raise RuntimeError(error)


def _launch(server: KamailioServer, binary: str) -> str:
    """Start Kamailio and wait until it answers; "" or what went wrong."""
    run = server.directory / "run"
    args = [
        binary,
        "-DD",
        "-E",
        "-f",
        str(server.config_file),
        "-w",
        str(server.directory),
        "-Y",
        str(run),
        "-P",
        str(run / "kamailio.pid"),
        "-m",
        "32",
        "-M",
        "4",
    ]
    if setpriv := shutil.which("setpriv"):
        args = [setpriv, "--pdeathsig", "TERM", "--", *args]
    with server.log_file.open("wb") as log:
        server.process = subprocess.Popen(
            args,
            cwd=server.directory,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    what = f"kamailio on udp:{HOST}:{server.sip_port} ({server.config_file})"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        # Not poll(): it would reap the main process (see stop()).
        code = _exit_code(server.process.pid)
        if code is not None:
            return f"{what} exited with code {code} while starting; log tail:\n{_tail(server)}"
        if _answers_options(server.sip_port):
            return ""
        time.sleep(0.02)
    return f"{what} did not answer OPTIONS within {START_TIMEOUT:.0f} s; log:\n{_tail(server)}"


def _exit_code(pid: int) -> int | None:
    """The exit status of ``pid`` if it has exited, without reaping it."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return -1
    return None if info is None else info.si_status


def _answers_options(port: int) -> bool:
    """True when a SIP OPTIONS to the proxy itself gets a final answer."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        s.settimeout(0.1)
        local = s.getsockname()[1]
        request = (
            f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK{uuid.uuid4().hex}\r\n"
            f"From: <sip:probe@{HOST}:{local}>;tag={uuid.uuid4().hex[:8]}\r\n"
            f"To: <sip:{HOST}:{port}>\r\n"
            f"Call-ID: {uuid.uuid4().hex}@{HOST}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Max-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        try:
            s.sendto(request.encode(), (HOST, port))
            answer = s.recv(65535)
        except OSError:  # nothing bound yet (ICMP port unreachable) or no answer in time
            return False
        return answer.startswith(b"SIP/2.0 2")


def _tail(server: KamailioServer) -> str:
    return "\n".join(server.log().splitlines()[-LOG_TAIL_LINES:])


KamailioFactory = Callable[..., KamailioServer]


@pytest.fixture
def kamailio_factory(tmp_path: Path) -> Iterator[KamailioFactory]:
    """``factory(template, NAME=value, …)``: a running Kamailio; all stopped afterwards."""
    require_kamailio()
    started: list[KamailioServer] = []

    def factory(template: Path, **values: str) -> KamailioServer:
        server = start_kamailio(tmp_path / f"kamailio{len(started)}", template, values)
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()
