"""A PostgreSQL store whose server accepts connections and never answers (hung, or a
proxy in front of a stopped one): commands and lookups fail with a clear error after the
connect timeout instead of waiting for good."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pbx_connector.errors import StoreError
from pbx_connector.store.async_readers import async_readers
from pbx_connector.store.db import POSTGRES_DEFAULTS, make_engine, postgres_options
from tests.helpers import silent_server


def test_a_command_against_a_server_that_never_answers_fails_after_the_connect_timeout(
    tmp_path: Path,
) -> None:
    """No `connect_timeout` in the URL: the default (10 s) ends it. Before, the command
    waited for good."""
    with silent_server() as port:
        url = f"postgresql+psycopg://pbx@127.0.0.1:{port}/pbx"
        result = subprocess.run(
            [sys.executable, "-m", "pbx_connector.cli", "--db", url, "phonebook", "list"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PBX_CONNECTOR_HOME": str(tmp_path / "home")},
        )
    assert result.returncode == 3, result.stderr
    assert f"127.0.0.1:{port}/pbx" in result.stderr
    assert "timeout expired" in result.stderr


def test_a_lookup_over_the_event_loops_connections_says_it_cannot_connect() -> None:
    with silent_server() as port:
        engine = make_engine(f"postgresql+psycopg://pbx@127.0.0.1:{port}/pbx?connect_timeout=1")
        readers = async_readers(engine, "the store")
        assert readers is not None

        async def ask() -> None:
            await readers.rows("SELECT 1", {})

        with pytest.raises(StoreError, match=r"cannot connect to the store: .*timeout expired"):
            asyncio.run(ask())
        engine.dispose()


def test_the_urls_own_connection_settings_win() -> None:
    assert postgres_options({}) == POSTGRES_DEFAULTS
    given = {"connect_timeout": "3", "sslmode": "require"}
    options = postgres_options(given)
    assert "connect_timeout" not in options
    assert options["keepalives_idle"] == POSTGRES_DEFAULTS["keepalives_idle"]
