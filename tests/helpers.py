"""Small builders shared by tests: CSV files, profiles, and what the store holds."""

from __future__ import annotations

import contextlib
import csv
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from typer.testing import CliRunner

from pbx_connector import profiles as service
from pbx_connector.cli import app
from pbx_connector.store import records as record_store
from pbx_connector.store.profiles import Profile, insert_profile

PHONEBOOK_HEADER = [
    "displayname",
    "phone",
    "givenname",
    "surname",
    "organisation",
    "email",
    "mobile",
    "homephone",
    "fax",
]
USERS_HEADER = ["username", "displayname", "givenname", "surname", "email", "extension"]


def write_csv(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    encoding: str = "utf-8",
    delimiter: str = ",",
) -> Path:
    with open(path, "w", newline="", encoding=encoding) as fh:
        writer = csv.writer(fh, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def phonebook_row(name: str, phone: str = "", **extra: str) -> list[str]:
    values = {"displayname": name, "phone": phone, **extra}
    return [values.get(h, "") for h in PHONEBOOK_HEADER]


def make_profile(
    engine: Engine,
    name: str,
    template: str,
    path: Path,
    *,
    mode: str = "mirror",
    variables: dict[str, str] | None = None,
    prefilter: str = "",
    **settings: str,
) -> Profile:
    profile, _ = service.new_profile(name, template, mode, {"path": str(path), **settings})
    if variables:
        service.set_variables(profile, variables)
    if prefilter:
        service.set_prefilter(profile, prefilter)
    with engine.begin() as conn:
        return insert_profile(conn, profile)


def records(engine: Engine, target: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return record_store.list_records(conn, target)


def by(items: list[dict[str, Any]], field: str) -> dict[Any, dict[str, Any]]:
    return {i[field]: i for i in items}


class Cli:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.runner = CliRunner()

    def __call__(self, *args: str, code: int | None = 0, stdin: str | None = None) -> Any:
        """Run the CLI; `code` is the exit code expected (None: any)."""
        result = self.runner.invoke(app, ["--db", str(self.db), *args], input=stdin)
        assert code is None or result.exit_code == code, (
            f"exit {result.exit_code}\nstdout: {result.stdout}\nstderr: {result.stderr}"
        )
        return result

    def json(self, *args: str, code: int = 0) -> Any:
        return json.loads(self(*args, "--json", code=code).stdout)


def free_port() -> int:
    """A loopback port nothing listens on (for "server unreachable" tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def silent_server(host: str = "127.0.0.1") -> Iterator[int]:
    """A TCP server on `host` that accepts connections and never says a word (a hung
    server, for timeout tests); yields its port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()
