"""pytest fixture for the throwaway Samba file server (see ``tests/servers/smbd.py``).

Use it from a test module as a module attribute (lint-clean, and pytest finds it)::

    from tests.servers import smbd_fixtures

    smbd_server = smbd_fixtures.smbd_server

``smbd_server`` (session): one smbd per test process, started on first use and stopped
when the last module that uses it is done (pytest gives every importing module its own
copy of a fixture, so the server itself is shared here). Tests add their own files with
``smbd_server.write(path, data)`` under names no other test uses.

Without Samba installed, or when not root, the fixture skips the test, unless the
environment variable CI is set: there a missing server is a broken setup and fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.servers.smbd import SmbdServer, smbd_unavailable_reason, start_smbd


@dataclass
class _Shared:
    server: SmbdServer | None = None
    users: int = 0


_SHARED = _Shared()


def require_smbd() -> None:
    reason = smbd_unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"smbd cannot run: {reason}; run scripts/test.sh to install it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def smbd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmbdServer]:
    require_smbd()
    if _SHARED.server is None or not _SHARED.server.running:
        _SHARED.server = start_smbd(tmp_path_factory.mktemp("smbd"))
    server = _SHARED.server
    _SHARED.users += 1
    try:
        yield server
    finally:
        _SHARED.users -= 1
        if _SHARED.users == 0:
            server.stop()
            _SHARED.server = None
