"""Opening the store: where it lives, the engine, and migrations that run by themselves."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from pbx_connector.errors import ConfigError, PbxConnectorError

ENV_DB = "PBX_CONNECTOR_DB"
ENV_HOME = "PBX_CONNECTOR_HOME"
DB_FILE = "pbx-connector.db"
MIGRATIONS = Path(__file__).parent / "migrations"


def data_dir() -> Path:
    """The instance's data directory, created on first use."""
    if home := os.environ.get(ENV_HOME):
        path = Path(home)
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(base) / "pbx-connector"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_url(url: str | None) -> str:
    """--db flag > PBX_CONNECTOR_DB > an SQLite file in the data directory.

    A plain path is taken as an SQLite file; `postgresql://` gets the psycopg 3 driver.
    """
    value = url or os.environ.get(ENV_DB) or ""
    if not value:
        return f"sqlite:///{data_dir() / DB_FILE}"
    if "://" not in value:
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    if value.startswith(("postgresql://", "postgres://")):
        value = "postgresql+psycopg://" + value.split("://", 1)[1]
    return value


def display_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid database URL>"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (the UI, lookups) go on while a sync writes.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    # A large import updates several indexes per row; a 16 MiB page cache (default 2 MiB)
    # keeps their pages in memory instead of re-reading them.
    cur.execute("PRAGMA cache_size=-16000")
    cur.close()


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"not a database URL: {display_url(url)}") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(parsed)
    except Exception as exc:  # unknown dialect, missing driver
        raise ConfigError(f"cannot use database {display_url(url)}: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _alembic_config(engine: Engine) -> Any:
    # Alembic is imported only when a migration runs: it costs a tenth of a second at
    # start-up, and most commands find the schema current.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision() -> str:
    """Revision ids are the numbers their files start with (0002_…): the head is the
    highest (a test checks that Alembic agrees)."""
    numbers = [p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*_*.py")]
    return max(numbers)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        return None if value is None else str(value)


def upgrade(engine: Engine) -> bool:
    """Bring the schema to the newest revision. Returns whether anything was done."""
    try:
        if current_revision(engine) == head_revision():
            return False
        from alembic import command

        command.upgrade(_alembic_config(engine), "head")
    except OperationalError as exc:
        raise PbxConnectorError(
            f"cannot open database {display_url(str(engine.url))}: {exc.orig}"
        ) from None
    return True


def open_store_engine(url: str | None) -> Engine:
    engine = make_engine(resolve_url(url))
    upgrade(engine)
    return engine
