"""A token is checked without writing on every request: while a sync holds SQLite's write
lock, requests with a token still get through, and the last use is recorded later."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from pbx_connector.service import App


def test_a_token_works_while_another_writer_holds_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the fix a request waited for the whole busy timeout, then failed.
    monkeypatch.setenv("PBX_CONNECTOR_BUSY_TIMEOUT", "2")
    path = tmp_path / "store.db"
    app = App.open(f"sqlite:///{path}")
    token = app.tokens.create("crm", role="viewer").token
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # a sync in the middle of its transaction
    try:
        principal = app.tokens.authenticate(token)
        assert principal.role == "viewer" and principal.username == "admin"
        assert app.tokens.list()[0].last_used is None  # could not be written yet
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    app.tokens.authenticate(token)
    first = app.tokens.list()[0].last_used
    assert first is not None
    # Within the minute, a use is not written again.
    app.tokens.authenticate(token)
    assert app.tokens.list()[0].last_used == first
    app.engine.dispose()
