"""pytest fixture for the throwaway Samba AD domain controller.

Use it from a test module with::

    from tests.servers.samba_fixtures import samba_ad  # noqa: F401

and mark the tests ``@pytest.mark.samba``. The DC is provisioned, started and populated
once per test session (about 15 s) and shared by every test that asks for it, so tests
must not change the seeded population (``tests.servers.samba_ad.USERS`` and friends):
a test that writes adds its own entries (with names no other test uses) and deletes them
again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import pytest

from tests.servers.samba_ad import (
    SambaAD,
    provision_samba_ad,
    samba_unavailable_reason,
)

log = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def samba_ad(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SambaAD]:
    """A running, populated Samba AD DC on 127.0.0.2 (or the next free loopback address)."""
    reason = samba_unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"Samba AD DC cannot run: {reason}; run the README's test command")
        pytest.skip(reason)
    started = time.monotonic()
    dc = provision_samba_ad(tmp_path_factory.mktemp("samba-ad"))
    provisioned = time.monotonic()
    try:
        dc.start()
        running = time.monotonic()
        dc.populate()
        log.info(
            "Samba AD DC on %s: provision %.1f s, start %.1f s, populate %.1f s",
            dc.host,
            provisioned - started,
            running - provisioned,
            time.monotonic() - running,
        )
        yield dc
    finally:
        dc.stop()
