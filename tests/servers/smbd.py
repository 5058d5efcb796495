"""A throwaway Samba file server (``smbd``) for the tests of the share location.

``start_smbd(base_dir)`` writes a private ``smb.conf`` (every directory below
``base_dir``), adds the share user to a private passdb with ``smbpasswd -a -s``, starts
``smbd`` in the foreground on a free loopback port and waits until the user can log on;
``SmbdServer.stop()`` ends it.

Why it looks the way it does (Samba 4.17, Debian 12):

* ``smb ports = PORT``, ``interfaces = 127.0.0.1`` and ``bind interfaces only = yes``: a
  high port on loopback only, nothing of the system's Samba is used or touched (private,
  lock, state, cache, pid and ncalrpc directories, the log and the passdb are ours).
* smbd must run as root (it switches to the logged-on user's uid for every file access),
  and a passdb user must be a Unix account. Rather than add a Unix account to the machine,
  the share user (``pbx``) is a name of the ``username map``, mapped to ``root``, whose
  passdb entry (in the private passdb only) has the share password. So the test files
  need no permissions for another uid, and ``/etc/passwd`` stays as it is.
* The map also lists ``pbx@example.test``: a Windows or AD server resolves a user
  principal name itself; a standalone Samba server only through its map. The domain of
  ``DOMAIN\\user`` is not checked by a standalone server (any domain maps to its own SAM).
* ``map to guest = Never``: a wrong password is a logon failure, never a guest session.
* Two shares: ``exports`` (read-only, the usual case) and ``secure`` (``smb encrypt =
  required``: the client must encrypt because the server asks).
* ``--foreground --no-process-group``: this process owns smbd; it is started in a session
  of its own, so ``stop()`` ends it and the children it forks per connection together,
  and ``setpriv --pdeathsig`` ends it if the test process is killed.
* Pass the port to every ``smbclient`` call (``-p``): it would try 445 and 139 otherwise.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
WORKGROUP = "EXAMPLE"
SHARE = "exports"
SECURE_SHARE = "secure"
USER = "pbx"
UPN = "pbx@example.test"
PASSWORD = "Pbx-Share-Secret-7"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 40


def _binary(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


def smbd_unavailable_reason() -> str | None:
    """Why a private smbd cannot run here (None when it can)."""
    missing = [name for name in ("smbd", "smbpasswd") if _binary(name) is None]
    if missing:
        return f"Samba programs not found: {', '.join(missing)} (Debian package samba)"
    if os.geteuid() != 0:
        return "smbd must run as root (it switches to the logged-on user for file access)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(could not read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


@dataclass
class SmbdServer:
    """A running private smbd: ``share_dir`` is the directory of the ``exports`` share,
    ``secure_dir`` that of the ``secure`` share (encryption required)."""

    base_dir: Path
    port: int
    host: str = HOST
    user: str = USER
    password: str = PASSWORD
    workgroup: str = WORKGROUP
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def share_dir(self) -> Path:
        return self.base_dir / "share"

    @property
    def secure_dir(self) -> Path:
        return self.base_dir / "secure"

    @property
    def conf(self) -> Path:
        return self.base_dir / "smb.conf"

    @property
    def log_file(self) -> Path:
        """smbd's log (``--debug-stdout``): with ``auth_audit:3``, one line per logon."""
        return self.base_dir / "log" / "smbd.log"

    def failed_logons(self) -> int:
        """How many logons the server has refused so far (its audit lines)."""
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return 0
        return sum(
            1
            for line in text.splitlines()
            if "Auth:" in line and "status [NT_STATUS_" in line and "NT_STATUS_OK" not in line
        )

    def unc(self, share: str = SHARE) -> str:
        return f"\\\\{self.host}\\{share}"

    def write(self, path: str, data: bytes, *, share: str = SHARE) -> Path:
        """Put a file on a share (``path`` with ``/``); returns its local path."""
        root = self.share_dir if share == SHARE else self.secure_dir
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def smbclient(self, *args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``smbclient`` against this server (the port always given)."""
        client = _binary("smbclient") or "smbclient"
        auth = f"{user or self.user}%{self.password}"
        return subprocess.run(
            [client, "-p", str(self.port), "-s", str(self.conf), "-U", auth, *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            stdin=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        """SIGTERM smbd and its children (its session), SIGKILL if needed. Idempotent."""
        proc = self.process
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # a child that outlived its parent
        self.process = None

    def __enter__(self) -> SmbdServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _config(server: SmbdServer) -> str:
    base = server.base_dir
    return f"""# Generated by tests/servers/smbd.py for one test run; see that module.
[global]
    server role = standalone server
    workgroup = {server.workgroup}
    netbios name = PBXTESTSMB
    smb ports = {server.port}
    interfaces = {server.host}
    bind interfaces only = yes
    disable netbios = yes
    private dir = {base}/private
    lock directory = {base}/lock
    state directory = {base}/state
    cache directory = {base}/cache
    pid directory = {base}/pid
    ncalrpc dir = {base}/ncalrpc
    log level = 1 auth_audit:3
    passdb backend = tdbsam:{base}/private/passdb.tdb
    username map = {base}/users.map
    map to guest = Never
    server min protocol = SMB2_02
    load printers = no
    printing = bsd
    printcap name = /dev/null
    disable spoolss = yes

[{SHARE}]
    path = {server.share_dir}
    read only = yes
    valid users = root

[{SECURE_SHARE}]
    path = {server.secure_dir}
    read only = yes
    valid users = root
    smb encrypt = required
"""


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((host, port)) == 0


def start_smbd(base_dir: Path) -> SmbdServer:
    """Configure and start a private smbd below ``base_dir``; RuntimeError with the log's
    tail if it does not come up within ``START_TIMEOUT``."""
    reason = smbd_unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    base_dir.mkdir(parents=True, exist_ok=True)
    for name in ("private", "lock", "state", "cache", "pid", "ncalrpc", "log", "share", "secure"):
        (base_dir / name).mkdir(exist_ok=True)
    (base_dir / "private").chmod(0o700)
    last_error = ""
    for _attempt in range(3):  # the port is picked before smbd binds it
        server = SmbdServer(base_dir=base_dir, port=free_port())
        server.conf.write_text(_config(server))
        (base_dir / "users.map").write_text(f"root = {USER} {UPN}\n")
        _add_user(server)
        last_error = _launch(server)
        if not last_error:
            return server
        server.stop()
        if "Address already in use" not in _tail(server.log_file):
            break
    raise RuntimeError(last_error)


def _add_user(server: SmbdServer) -> None:
    smbpasswd = _binary("smbpasswd") or "smbpasswd"
    done = subprocess.run(
        [smbpasswd, "-c", str(server.conf), "-a", "-s", "root"],
        input=f"{server.password}\n{server.password}\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"smbpasswd -a failed ({done.returncode}): {done.stdout}{done.stderr}")


def _launch(server: SmbdServer) -> str:
    """Start smbd and wait until it accepts connections; "" or what went wrong."""
    args = [
        _binary("smbd") or "smbd",
        "--foreground",
        "--no-process-group",
        "--debug-stdout",
        "-s",
        str(server.conf),
    ]
    if setpriv := shutil.which("setpriv"):
        args = [setpriv, "--pdeathsig", "TERM", "--", *args]
    with server.log_file.open("ab") as out:
        server.process = subprocess.Popen(
            args,
            cwd=server.base_dir,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    what = f"smbd on {server.host}:{server.port} (base dir {server.base_dir})"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return (
                f"{what} exited with code {server.process.returncode} while starting; "
                f"log tail:\n{_tail(server.log_file)}"
            )
        if _port_open(server.host, server.port):
            return ""
        time.sleep(0.05)
    return (
        f"{what} did not listen within {START_TIMEOUT:.0f} s; log tail:\n{_tail(server.log_file)}"
    )
