"""Shared fixtures: an isolated data directory for every test, and the store on SQLite
and on a real, throwaway PostgreSQL server."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pbx_connector.store import db as store_db
from tests.servers.postgres import PostgresServer, postgres_available, start_postgres

# Directory servers for every test module: imported here, they are fixtures of this
# conftest, so each session fixture starts its server once per run.
from tests.servers.samba_fixtures import samba_ad  # noqa: F401
from tests.servers.slapd_fixtures import (  # noqa: F401
    slapd_factory,
    slapd_scratch,
    slapd_server,
    ucs_slapd_server,
)

_db_counter = itertools.count()


@pytest.fixture(autouse=True)
def data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own data directory (and so its own instance key)."""
    home = tmp_path / "home"
    monkeypatch.setenv(store_db.ENV_HOME, str(home))
    monkeypatch.delenv(store_db.ENV_DB, raising=False)
    monkeypatch.delenv("PBX_CONNECTOR_SECRET_KEY", raising=False)
    return home


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    if not postgres_available():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; run the README's test command")
        pytest.skip("PostgreSQL binaries are not installed")
    server = start_postgres(tmp_path_factory.mktemp("postgres"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: an SQLite file, or a new database on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = f"pbxc_test_{os.getpid()}_{next(_db_counter)}"
    url = server.create_database(name)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = store_db.open_store_engine(db_url)
    try:
        yield eng
    finally:
        eng.dispose()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"
