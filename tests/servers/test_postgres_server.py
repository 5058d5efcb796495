"""The throwaway PostgreSQL helper starts a real server, serves SQLAlchemy, and stops."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.servers.postgres import postgres_available, start_postgres

pytestmark = pytest.mark.postgres


def _port_closed(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        return sock.connect_ex((host, port)) != 0


def test_start_create_use_drop_stop(tmp_path: Path) -> None:
    if not postgres_available():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed")

    server = start_postgres(tmp_path)
    try:
        assert server.host == "127.0.0.1"
        assert server.port > 1024
        assert (server.datadir / "PG_VERSION").is_file()
        assert server.url() == f"postgresql+psycopg://postgres@127.0.0.1:{server.port}/postgres"

        url = server.create_database("pbx_test")
        assert url == server.url("pbx_test")

        engine = create_engine(url)
        try:
            with engine.begin() as conn:
                conn.execute(text("CREATE TABLE phonebook (id serial PRIMARY KEY, name text)"))
                conn.execute(text("INSERT INTO phonebook (name) VALUES (:n)"), {"n": "Zoë"})
            # Keep a pooled connection open: drop_database must terminate it.
            with engine.connect() as conn:
                rows = conn.execute(text("SELECT id, name FROM phonebook")).all()
            assert [tuple(r) for r in rows] == [(1, "Zoë")]
        finally:
            engine.dispose(close=False)

        server.drop_database("pbx_test")
        with server.connect() as admin:
            cur = admin.execute("SELECT 1 FROM pg_database WHERE datname = 'pbx_test'")
            assert cur.fetchone() is None
        server.drop_database("pbx_test")  # dropping a missing database is fine
    finally:
        server.stop()

    assert _port_closed(server.host, server.port)
    server.stop()  # idempotent


def test_stop_after_server_already_gone(tmp_path: Path) -> None:
    if not postgres_available():
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl, postgres) are not installed")

    server = start_postgres(tmp_path)
    server.stop()
    # A fresh handle on the stopped cluster: stop() must not fail when nothing runs.
    server.stopped = False
    server.stop()
    assert _port_closed(server.host, server.port)
