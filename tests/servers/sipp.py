"""SIPp (Debian's ``sip-tester``) as the two phones of a SIP call through a proxy.

``SippPhones(directory, caller_scenario, callee_scenario)`` owns one loopback UDP port for
the callee (``callee_port``: the proxy forwards calls there). ``call(proxy_port, callee=…,
caller=…, display=…)`` makes one whole call (INVITE, 200, ACK, BYE, 200): it starts SIPp
as the callee (UAS) for exactly one call, waits until it has bound its port, runs SIPp as
the caller (UAC) against the proxy, and returns the ``From`` header the caller sent and
the one the callee received.

Why it looks the way it does (SIPp 3.6, Debian 12):

* One SIPp process per side and call (``-m 1``): each exits when its call is done, so its
  exit code says whether the call went through (0 = every call succeeded) and its log
  file is complete when it is read; no call sees another's messages.
* The callee scenario stores the received ``From`` with ``<ereg search_in="hdr">`` and
  writes it with a ``<log>`` action (``-trace_logs``). ``[last_From:]`` is expanded in
  messages that SIPp sends but not in ``<log>``, which writes it empty. The header is
  written as raw bytes, so non-ASCII names reach the test as the proxy sent them.
* The caller's ``From`` is built from ``-key`` values (``caller``, ``fromname``,
  ``fromtag``) and its fixed local port, so the test knows the exact header it sent and
  can tell "unchanged" from "changed" byte for byte.
* ``-i``, ``-mi`` and ``-ci`` put the SIP, media and control sockets on 127.0.0.1 (the
  media and control sockets would listen on every address otherwise). Their ports stay
  SIPp's defaults (6000, 8888), because SIPp moves on to the next free one only when the
  port was not given; an explicit ``-p`` port that is taken is fatal instead, so the SIP
  ports come from ``free_udp_port``.
* ``free_port`` of tests/helpers.py checks a TCP port; SIP runs over UDP here, whose
  ports are a separate space, hence ``free_udp_port``. A UDP socket has no listen state
  to poll, so "the callee is ready" is "its port can no longer be bound"; SIPp binds it
  before it reads the network, and a datagram that arrives in between waits in the
  socket.
* Every SIPp gets its own global ``-timeout`` (a failed call ends it) and the Python
  side waits with a timeout too, then kills it. ``setpriv --pdeathsig`` ends a SIPp
  whose test process was killed. ``-nostdin``: SIPp reads keys from stdin otherwise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HOST = "127.0.0.1"
# A call through a healthy proxy takes well under a second; these only bound a broken one.
CALL_TIMEOUT = 15
READY_TIMEOUT = 10.0
LOG_TAIL_LINES = 40


def find_sipp() -> str | None:
    return shutil.which("sipp")


def require_sipp() -> None:
    """Skip (or, under CI, fail) the current test when SIPp is not installed."""
    if find_sipp() is not None:
        return
    message = "SIPp is not installed (Debian package sip-tester)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; run scripts/test.sh to install it")
    pytest.skip(message)


def free_udp_port() -> int:
    """A loopback UDP port nothing is bound to."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def udp_port_bound(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return True
        return False


@dataclass(frozen=True)
class Call:
    """One call as both phones saw it. Headers are without the ``From:`` name."""

    sent_from: str
    received_from: str
    seconds: float


class SippPhones:
    """A caller and a callee, both SIPp, with their files below ``directory``."""

    def __init__(self, directory: Path, caller_scenario: Path, callee_scenario: Path) -> None:
        self.directory = directory
        self.caller_scenario = caller_scenario
        self.callee_scenario = callee_scenario
        self.callee_port = free_udp_port()
        self._calls = 0
        self._processes: list[subprocess.Popen[bytes]] = []
        directory.mkdir(parents=True, exist_ok=True)

    def call(self, proxy_port: int, *, callee: str, caller: str, display: str = "") -> Call:
        """Call ``callee`` (the Request-URI user) from ``caller`` (the From user), with
        ``display`` as the From display name ("" = none), through the proxy."""
        self._calls += 1
        name = f"call{self._calls}"
        received_log = self.directory / f"{name}-callee.log"
        callee_out = self.directory / f"{name}-callee.out"
        caller_out = self.directory / f"{name}-caller.out"
        callee_proc = self._start_callee(received_log, callee_out)
        try:
            caller_port = free_udp_port()
            tag = uuid.uuid4().hex
            fromname = f'"{display}" ' if display else ""
            sent = f"{fromname}<sip:{caller}@{HOST}:{caller_port}>;tag={tag}"
            started = time.monotonic()
            done = self._run_caller(
                proxy_port, caller_port, callee, caller, fromname, tag, caller_out
            )
            seconds = time.monotonic() - started
            if done.returncode != 0:
                raise AssertionError(
                    f"the caller's SIPp exited with {done.returncode}: the call failed\n"
                    f"{_tail(caller_out)}\ncallee:\n{_tail(callee_out)}"
                )
            try:
                code = callee_proc.wait(timeout=CALL_TIMEOUT)
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"the callee's SIPp did not finish its call\n{_tail(callee_out)}"
                ) from None
            if code != 0:
                raise AssertionError(f"the callee's SIPp exited with {code}\n{_tail(callee_out)}")
            return Call(sent, _received_from(received_log), seconds)
        finally:
            _end(callee_proc)

    def stop(self) -> None:
        """End every SIPp still running (a call that failed half-way)."""
        for proc in self._processes:
            _end(proc)

    def _start_callee(self, received_log: Path, out: Path) -> subprocess.Popen[bytes]:
        args = [
            *_sipp_command(),
            "-sf",
            str(self.callee_scenario),
            *_loopback_options(self.callee_port),
            "-trace_logs",
            "-log_file",
            str(received_log),
            "-timeout",
            f"{CALL_TIMEOUT}s",
            "-timeout_error",
        ]
        with out.open("wb") as fh:
            proc = subprocess.Popen(
                args, cwd=self.directory, stdin=subprocess.DEVNULL, stdout=fh, stderr=fh
            )
        self._processes.append(proc)
        deadline = time.monotonic() + READY_TIMEOUT
        while not udp_port_bound(self.callee_port):
            if proc.poll() is not None or time.monotonic() > deadline:
                _end(proc)
                raise RuntimeError(
                    f"the callee's SIPp did not bind {HOST}:{self.callee_port}\n{_tail(out)}"
                )
            time.sleep(0.01)
        return proc

    def _run_caller(
        self,
        proxy_port: int,
        caller_port: int,
        callee: str,
        caller: str,
        fromname: str,
        tag: str,
        out: Path,
    ) -> subprocess.CompletedProcess[bytes]:
        args = [
            *_sipp_command(),
            f"{HOST}:{proxy_port}",
            "-sf",
            str(self.caller_scenario),
            *_loopback_options(caller_port),
            "-s",
            callee,
            "-key",
            "caller",
            caller,
            "-key",
            "fromname",
            fromname,
            "-key",
            "fromtag",
            tag,
            "-timeout",
            f"{CALL_TIMEOUT}s",
            "-timeout_error",
        ]
        with out.open("wb") as fh:
            try:
                return subprocess.run(
                    args,
                    cwd=self.directory,
                    stdin=subprocess.DEVNULL,
                    stdout=fh,
                    stderr=fh,
                    timeout=CALL_TIMEOUT + 5,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise AssertionError(f"the caller's SIPp hung\n{_tail(out)}") from None


def _sipp_command() -> list[str]:
    sipp = find_sipp() or "sipp"
    if setpriv := shutil.which("setpriv"):
        return [setpriv, "--pdeathsig", "TERM", "--", sipp]
    return [sipp]


def _loopback_options(port: int) -> list[str]:
    return ["-i", HOST, "-p", str(port), "-mi", HOST, "-ci", HOST, "-m", "1", "-nostdin"]


def _received_from(log: Path) -> str:
    """The From header the callee logged (see uas.xml: one ``FROM:`` line per call)."""
    try:
        raw = log.read_bytes()
    except OSError as exc:
        raise AssertionError(f"the callee logged nothing ({exc})") from None
    lines = [line for line in raw.splitlines() if line.startswith(b"FROM:")]
    assert len(lines) == 1, f"expected one logged From header, got {raw!r}"
    # Strictly UTF-8: a name mangled on its way would fail here, not compare unequal.
    return lines[0].removeprefix(b"FROM:").decode("utf-8").strip()


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"({path} is missing)"
    return "\n".join(lines[-LOG_TAIL_LINES:])


PhonesFactory = Callable[[Path, Path], SippPhones]


@pytest.fixture
def sipp_phones_factory(tmp_path: Path) -> Iterator[PhonesFactory]:
    """``factory(caller_scenario, callee_scenario)``: a caller and a callee for one test;
    any SIPp still running is ended afterwards."""
    require_sipp()
    made: list[SippPhones] = []

    def factory(caller_scenario: Path, callee_scenario: Path) -> SippPhones:
        phones = SippPhones(tmp_path / f"sipp{len(made)}", caller_scenario, callee_scenario)
        made.append(phones)
        return phones

    try:
        yield factory
    finally:
        for phones in made:
            phones.stop()
