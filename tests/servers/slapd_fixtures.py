"""pytest fixtures for throwaway OpenLDAP servers (see ``tests/servers/slapd.py``).

Import the fixtures a test module uses, and ``slapd_server`` with them, since the others
depend on it and pytest looks fixtures up by name in the test module::

    from tests.servers.slapd_fixtures import slapd_scratch, slapd_server  # noqa: F401

ruff then also reports F811 at every test that takes the fixture as a parameter (the
parameter "redefines" the import). Assigning the fixtures as module attributes instead is
lint-clean and works the same way for pytest::

    from tests.servers import slapd_fixtures

    slapd_server = slapd_fixtures.slapd_server

- ``slapd_server`` (session): the generic directory, ``SESSION_USERS`` (5,000) users in
  ``ou=people,dc=example,dc=test`` and ``SESSION_CONTACTS`` contacts in ``ou=contacts``.
  Shared by every test in the run: do not change its entries; write into a
  ``slapd_scratch`` subtree instead.
- ``ucs_slapd_server`` (session): a second server with the UCS-shaped tree below
  ``dc=ucs,dc=test``; only started when a test asks for it.
- ``slapd_scratch`` (function): an empty ``ou=scratch-N`` below the session server's suffix
  for one test to fill and change, removed afterwards.
- ``slapd_factory`` (function): starts private servers with any tree
  (``slapd_factory(entries=..., suffix=...)``); all stopped after the test.

pytest gives every module that imports a fixture function its own copy of the fixture,
with its own session cache, so a plain session fixture imported into ten modules would
start ten servers. The session fixtures here therefore share one server per process
(``_shared_server``) and stop it when the last copy is torn down.

Without slapd installed the fixtures skip the test, unless the environment variable CI is
set: there a missing server is a broken setup and fails the test (like postgres_server).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest

from tests.servers.slapd import (
    DEFAULT_SUFFIX,
    UCS_SUFFIX,
    Entry,
    SlapdServer,
    TreeBuilder,
    directory_tree,
    slapd_available,
    start_slapd,
    ucs_tree,
)

SESSION_USERS = 5000
SESSION_CONTACTS = 200
UCS_SESSION_USERS = 50

_scratch_counter = itertools.count(1)


@dataclass
class _Shared:
    server: SlapdServer | None = None
    users: int = 0


_SHARED: dict[str, _Shared] = {}


@contextlib.contextmanager
def _shared_server(key: str, start: Callable[[], SlapdServer]) -> Iterator[SlapdServer]:
    """The process-wide server ``key``, started on first use and stopped when the last
    fixture copy using it is torn down (see the module docstring for why)."""
    shared = _SHARED.setdefault(key, _Shared())
    if shared.server is None or shared.server.stopped:
        shared.server = start()
    server = shared.server
    shared.users += 1
    try:
        yield server
    finally:
        shared.users -= 1
        if shared.users == 0:
            server.stop()
            shared.server = None


def require_slapd() -> None:
    """Skip (or, under CI, fail) the current test when slapd is not installed."""
    if slapd_available():
        return
    message = "OpenLDAP slapd/slapadd are not installed (Debian package slapd)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; run scripts/test.sh to install them")
    pytest.skip(message)


@pytest.fixture(scope="session")
def slapd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    require_slapd()
    start = partial(
        start_slapd,
        tmp_path_factory.getbasetemp() / "slapd",
        suffix=DEFAULT_SUFFIX,
        entries=partial(directory_tree, users=SESSION_USERS, contacts=SESSION_CONTACTS),
    )
    with _shared_server("generic", start) as server:
        yield server


@pytest.fixture(scope="session")
def ucs_slapd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SlapdServer]:
    require_slapd()
    start = partial(
        start_slapd,
        tmp_path_factory.getbasetemp() / "slapd-ucs",
        suffix=UCS_SUFFIX,
        entries=partial(ucs_tree, users=UCS_SESSION_USERS),
    )
    with _shared_server("ucs", start) as server:
        yield server


@dataclass(frozen=True)
class ScratchOU:
    """An empty organizational unit on the session server that one test owns."""

    server: SlapdServer
    dn: str


@pytest.fixture
def slapd_scratch(slapd_server: SlapdServer) -> Iterator[ScratchOU]:
    name = f"scratch-{next(_scratch_counter)}"
    dn = f"ou={name},{slapd_server.suffix}"
    slapd_server.add(dn, {"objectClass": ["top", "organizationalUnit"], "ou": [name]})
    try:
        yield ScratchOU(server=slapd_server, dn=dn)
    finally:
        slapd_server.delete_subtree(dn)


SlapdFactory = Callable[..., SlapdServer]


@pytest.fixture
def slapd_factory(tmp_path: Path) -> Iterator[SlapdFactory]:
    """``factory(*, suffix=DEFAULT_SUFFIX, entries=())`` -> a new private SlapdServer."""
    require_slapd()
    started: list[SlapdServer] = []

    def factory(
        *, suffix: str = DEFAULT_SUFFIX, entries: Iterable[Entry] | TreeBuilder = ()
    ) -> SlapdServer:
        server = start_slapd(tmp_path / "slapd", suffix=suffix, entries=entries)
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()
