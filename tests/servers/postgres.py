"""Throwaway PostgreSQL servers for the test suite.

``start_postgres(base_dir)`` runs ``initdb`` and ``pg_ctl start`` for a private cluster that
listens on a free loopback port with trust authentication, and returns a ``PostgresServer``
handle; ``PostgresServer.stop()`` shuts it down again. Nothing is registered globally: the
caller (a session fixture in the project's conftest) owns the server and must stop it.

``initdb`` and ``postgres`` refuse to run as root. When the tests run as root (as in CI) the
binaries are run as the ``postgres`` system user created by Debian's ``postgresql`` package,
and the cluster's directories are owned by that user. pytest's ``tmp_path`` lives below a
``0700`` directory owned by root, which that user cannot reach; in that case the cluster is
placed in a fresh directory under the system temporary directory instead, which ``stop()``
removes.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"
HOST = "127.0.0.1"
START_TIMEOUT = 30.0
LOG_TAIL_LINES = 40
# sun_path is 108 bytes on Linux; leave room for "/.s.PGSQL.NNNNN" and the terminating NUL.
MAX_SOCKET_DIR_LEN = 80

SERVER_SETTINGS: dict[str, str] = {
    "listen_addresses": HOST,
    "max_connections": "50",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


def _version_key(bin_dir: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin``: the numeric version, newest last."""
    parts = bin_dir.parent.name.split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (-1,)


def find_bin_dir() -> Path | None:
    """Directory holding initdb, pg_ctl and postgres: the newest Debian install, else PATH."""
    candidates = sorted(
        (Path(p) for p in _glob_dirs(POSTGRES_BIN_GLOB)), key=_version_key, reverse=True
    )
    for bin_dir in candidates:
        if all(os.access(bin_dir / name, os.X_OK) for name in REQUIRED_BINARIES):
            return bin_dir
    found = [shutil.which(name) for name in REQUIRED_BINARIES]
    if all(found):
        dirs = {Path(p).resolve().parent for p in found if p is not None}
        if len(dirs) == 1:
            return dirs.pop()
    return None


def _glob_dirs(pattern: str) -> list[str]:
    return [p for p in glob.glob(pattern) if os.path.isdir(p)]


def postgres_available() -> bool:
    """True when the PostgreSQL server binaries (initdb, pg_ctl, postgres) are installed."""
    return find_bin_dir() is not None


def _free_port() -> int:
    """A port on the loopback interface that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((HOST, port)) == 0


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(could not read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(empty)"


def _privilege_prefix() -> list[str]:
    """Command prefix that drops root privileges to the postgres system user ([] if not root)."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise RuntimeError(
            f"running as root, but there is no {SYSTEM_USER!r} system user to run initdb and "
            "postgres as (it is created by the Debian 'postgresql' package)"
        ) from None
    if runuser := shutil.which("runuser"):
        return [runuser, "-u", SYSTEM_USER, "--"]
    if setpriv := shutil.which("setpriv"):
        return [setpriv, f"--reuid={SYSTEM_USER}", f"--regid={SYSTEM_USER}", "--init-groups"]
    raise RuntimeError("running as root, but neither runuser nor setpriv is available")


def _chown_to_system_user(path: Path) -> None:
    shutil.chown(path, user=SYSTEM_USER, group=SYSTEM_USER)


def _run(
    prefix: Sequence[str], args: Sequence[str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _usable_by(prefix: Sequence[str], path: Path) -> bool:
    """Whether the (possibly unprivileged) user behind ``prefix`` can write into ``path``."""
    if not prefix:
        return os.access(path, os.W_OK | os.X_OK)
    result = _run(prefix, ["test", "-w", str(path), "-a", "-x", str(path)], Path("/"), 10)
    return result.returncode == 0


@dataclass
class PostgresServer:
    """A running throwaway PostgreSQL cluster; trust auth, superuser ``user``, no password."""

    host: str
    port: int
    user: str
    datadir: Path
    bin_dir: Path = field(repr=False)
    log_file: Path = field(repr=False)
    socket_dir: Path = field(repr=False)
    run_prefix: tuple[str, ...] = field(default=(), repr=False)
    cleanup_dirs: tuple[Path, ...] = field(default=(), repr=False)
    stopped: bool = field(default=False, repr=False)

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL for ``database`` on this server (psycopg 3 driver)."""
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A plain psycopg autocommit connection, for administrative statements."""
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=database,
            autocommit=True,
            connect_timeout=5,
        )

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name`` (UTF8) and return its SQLAlchemy URL."""
        with self.connect() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} ENCODING 'UTF8' TEMPLATE template0").format(
                    sql.Identifier(name)
                )
            )
        return self.url(name)

    def terminate_connections(self, name: str) -> None:
        """End every connection to the database ``name`` from the server's side, as a
        restarted or failed-over server would."""
        with self.connect() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )

    def drop_database(self, name: str) -> None:
        """Terminate every connection to ``name``, then drop it (no error if it is absent)."""
        self.terminate_connections(name)
        with self.connect() as conn:
            force = sql.SQL(" WITH (FORCE)") if conn.info.server_version >= 130000 else sql.SQL("")
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {}{}").format(sql.Identifier(name), force)
            )

    def stop(self) -> None:
        """Stop the server (immediate shutdown) and remove private temp dirs; idempotent."""
        if self.stopped:
            return
        self.stopped = True
        pid_file = self.datadir / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                _run(
                    self.run_prefix,
                    [
                        str(self.bin_dir / "pg_ctl"),
                        "stop",
                        "-D",
                        str(self.datadir),
                        "-m",
                        "immediate",
                        "-w",
                        "-t",
                        "30",
                    ],
                    self.datadir.parent,
                    timeout=40,
                )
            _kill_leftover_postmaster(pid_file)
        for path in self.cleanup_dirs:
            shutil.rmtree(path, ignore_errors=True)


def _kill_leftover_postmaster(pid_file: Path) -> None:
    """If pg_ctl stop failed and our postmaster still runs, SIGKILL it (last resort)."""
    try:
        pid = int(pid_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # raises ProcessLookupError once it is gone
            time.sleep(0.05)


def _make_runtime_dir(base_dir: Path, prefix: Sequence[str]) -> tuple[Path, bool]:
    """A directory the server user owns: below ``base_dir`` if reachable, else under /tmp.

    Returns the directory and whether it lies outside ``base_dir`` (and so must be removed
    by ``stop()``).
    """
    base_dir.mkdir(parents=True, exist_ok=True)
    runtime = Path(tempfile.mkdtemp(prefix="postgres-", dir=base_dir))
    if prefix:
        _chown_to_system_user(runtime)
    if _usable_by(prefix, runtime) and len(str(runtime / "socket")) <= MAX_SOCKET_DIR_LEN:
        return runtime, False
    shutil.rmtree(runtime, ignore_errors=True)
    runtime = Path(tempfile.mkdtemp(prefix="pbx-pg-"))
    if prefix:
        _chown_to_system_user(runtime)
    if not _usable_by(prefix, runtime):
        shutil.rmtree(runtime, ignore_errors=True)
        raise RuntimeError(f"the {SYSTEM_USER!r} user cannot write to {runtime.parent}")
    return runtime, True


def start_postgres(base_dir: Path) -> PostgresServer:
    """initdb a fresh cluster and start it on a free 127.0.0.1 port; wait until it accepts.

    Raises RuntimeError with the reason (and the server log's tail) if the binaries are
    missing or the server does not come up within ~30 s.
    """
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in "
            f"{POSTGRES_BIN_GLOB} or on PATH; install the Debian 'postgresql' package"
        )
    prefix = _privilege_prefix()
    runtime, outside_base = _make_runtime_dir(Path(base_dir), prefix)
    cleanup = (runtime,) if outside_base else ()
    datadir = runtime / "data"
    socket_dir = runtime / "socket"
    log_file = runtime / "server.log"
    socket_dir.mkdir()
    if prefix:
        _chown_to_system_user(socket_dir)

    try:
        initdb = _run(
            prefix,
            [
                str(bin_dir / "initdb"),
                "-D",
                str(datadir),
                "--username",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            runtime,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        for path in cleanup:
            shutil.rmtree(path, ignore_errors=True)
        raise RuntimeError(f"initdb -D {datadir} did not finish within 120 s") from None
    if initdb.returncode != 0:
        for path in cleanup:
            shutil.rmtree(path, ignore_errors=True)
        raise RuntimeError(
            f"initdb -D {datadir} failed with exit code {initdb.returncode}:\n"
            f"{initdb.stdout}{initdb.stderr}"
        )

    # The port is picked before the server binds it, so another process may take it in
    # between; retry a couple of times when the log says the address is in use.
    last_error = ""
    for _attempt in range(3):
        server = PostgresServer(
            host=HOST,
            port=_free_port(),
            user=SUPERUSER,
            datadir=datadir,
            bin_dir=bin_dir,
            log_file=log_file,
            socket_dir=socket_dir,
            run_prefix=tuple(prefix),
            cleanup_dirs=cleanup,
        )
        log_offset = log_file.stat().st_size if log_file.exists() else 0
        last_error = _start(server)
        if not last_error:
            return server
        server.cleanup_dirs = ()  # keep the cluster for the next attempt
        server.stop()
        log_text = _log_since(log_file, log_offset)
        if "could not bind" not in log_text and "already in use" not in log_text:
            break
    for path in cleanup:
        shutil.rmtree(path, ignore_errors=True)
    raise RuntimeError(last_error)


def _log_since(log_file: Path, offset: int) -> str:
    try:
        with log_file.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")
    except OSError:
        return ""


def _start(server: PostgresServer) -> str:
    """Start ``server`` and wait for a working connection; return "" or an error message."""
    settings = {
        **SERVER_SETTINGS,
        "port": str(server.port),
        "unix_socket_directories": str(server.socket_dir),
    }
    options = " ".join(f"-c {shlex.quote(f'{key}={value}')}" for key, value in settings.items())
    deadline = time.monotonic() + START_TIMEOUT
    what = f"PostgreSQL on {server.host}:{server.port} (data dir {server.datadir})"
    try:
        result = _run(
            server.run_prefix,
            [
                str(server.bin_dir / "pg_ctl"),
                "start",
                "-D",
                str(server.datadir),
                "-l",
                str(server.log_file),
                "-o",
                options,
                "-w",
                "-t",
                str(int(START_TIMEOUT)),
            ],
            server.datadir.parent,
            timeout=START_TIMEOUT + 10,
        )
    except subprocess.TimeoutExpired:
        return f"{what} did not start within {START_TIMEOUT:.0f} s; server log tail:\n" + _tail(
            server.log_file
        )
    if result.returncode != 0:
        return (
            f"{what} failed to start (pg_ctl exit code {result.returncode}):\n"
            f"{result.stdout}{result.stderr}\nserver log tail:\n{_tail(server.log_file)}"
        )

    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with server.connect() as conn:
                conn.execute("SELECT 1")
            return ""
        except psycopg.OperationalError as exc:
            last_exc = exc
            time.sleep(0.1)
    return (
        f"{what} did not accept connections within {START_TIMEOUT:.0f} s ({last_exc}); "
        f"server log tail:\n{_tail(server.log_file)}"
    )
