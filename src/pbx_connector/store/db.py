"""Opening the store: where it lives, the engine, and migrations that run by themselves."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, SQLAlchemyError

from pbx_connector.errors import ConfigError, StoreError

ENV_DB = "PBX_CONNECTOR_DB"
ENV_HOME = "PBX_CONNECTOR_HOME"
#: How long to wait for another writer of an SQLite store, in seconds (default 10).
ENV_BUSY_TIMEOUT = "PBX_CONNECTOR_BUSY_TIMEOUT"
DB_FILE = "pbx-connector.db"
MIGRATIONS = Path(__file__).parent / "migrations"


def data_dir() -> Path:
    """The instance's data directory, created on first use, owner-only: it holds the
    store (password hashes, the audit log) and the instance key."""
    if home := os.environ.get(ENV_HOME):
        path = Path(home)
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(base) / "pbx-connector"
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
    return path


def private_dir(name: str) -> Path:
    """A directory of the data directory that only the owner can enter (plan spools)."""
    path = data_dir() / name
    if not path.is_dir():
        path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def permission_warnings(url: str) -> list[str]:
    """What other local users could read: an SQLite store or its directory open to them."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return []
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return []
    out: list[str] = []
    db = Path(parsed.database)
    for path, wanted in ((db.parent, 0o700), (db, 0o600)):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except OSError:
            continue
        if mode & 0o077:
            out.append(
                f"{path} is readable by other users (mode {mode:04o}); "
                f"it holds password hashes: chmod {wanted:04o} {path}"
            )
    return out


def resolve_url(url: str | None) -> str:
    """--db flag > PBX_CONNECTOR_DB > an SQLite file in the data directory.

    A plain path is taken as an SQLite file; `postgresql://` gets the psycopg 3 driver.
    """
    value = url if url is not None else os.environ.get(ENV_DB) or ""
    if url is not None and not url.strip():
        raise ConfigError("the database URL is empty", field="db")
    if not value:
        return f"sqlite:///{data_dir() / DB_FILE}"
    if "://" not in value:
        if Path(value).expanduser().is_dir():
            raise ConfigError(f"{value} is a directory, not an SQLite file", field="db")
        return f"sqlite:///{Path(value).expanduser().resolve()}"
    if value.startswith(("postgresql://", "postgres://")):
        value = "postgresql+psycopg://" + value.split("://", 1)[1]
    return value


def display_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<invalid database URL>"


def busy_timeout_ms() -> int:
    text = os.environ.get(ENV_BUSY_TIMEOUT, "").strip()
    try:
        seconds = float(text) if text else 10.0
    except ValueError:
        seconds = 10.0
    if not 0 <= seconds <= 3600:  # also false for nan
        seconds = 10.0
    return int(seconds * 1000)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets readers (the UI, lookups) go on while a sync writes.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms()}")
    cur.close()


#: A large import updates several indexes per row; a 16 MiB page cache (SQLite's default
#: is 2 MiB) keeps their pages in memory instead of re-reading them. Only while a sync
#: writes (`import_cache`): every pooled connection of `serve` that answers lookups on a
#: store of a million entries filled its 16 MiB too, 30 MB per worker.
IMPORT_CACHE_KIB = 16000
DEFAULT_CACHE_KIB = 2000


@contextmanager
def import_cache(conn: Connection) -> Iterator[None]:
    """The large page cache of an import on this connection (SQLite), for the block."""
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql(f"PRAGMA cache_size=-{IMPORT_CACHE_KIB}")
    try:
        yield
    finally:
        # Back in the pool, the connection gives the pages back (SQLite frees them). A
        # connection that cannot take this is broken and will not be pooled again.
        with contextlib.suppress(SQLAlchemyError):
            conn.exec_driver_sql(f"PRAGMA cache_size=-{DEFAULT_CACHE_KIB}")


class NoWaitReaders:
    """One driver connection per thread to an SQLite store, for the reads that must
    never wait: a caller-name lookup answered on `serve`'s event loop, where waiting
    for SQLite's lock (the busy timeout) would hold up every other request. Each reads
    only (`query_only`) and has no busy timeout: a read that would wait raises
    `sqlite3.OperationalError` at once, and the caller asks again where it may wait.
    In WAL mode readers do not wait for a writer, so that is rare (a checkpoint that
    resets the log, recovery after a crash)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: every SELECT is a read transaction of its own, which
            # sees every write committed before it (a sync's, the next lookup after it).
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
            conn.execute("PRAGMA query_only=ON")
            self._local.conn = conn
        return conn


def no_wait_readers(engine: Engine) -> NoWaitReaders | None:
    """`NoWaitReaders` of an SQLite store; None for PostgreSQL, whose every read is a
    round trip over the network and belongs in a thread."""
    database = engine.url.database or ""
    if engine.dialect.name != "sqlite" or not database or database.startswith("file:"):
        return None
    return NoWaitReaders(database)


#: libpq's connection settings of a PostgreSQL store, unless its URL sets them: without a
#: connect timeout a server that accepts the connection and never answers (hung, or a
#: proxy in front of a stopped one) held every command, and every request of `serve`,
#: for good; without keepalives a server gone from the network is noticed after two
#: hours (Linux's default), with these after about a minute.
POSTGRES_DEFAULTS: dict[str, str] = {
    "connect_timeout": "10",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}


def postgres_options(query: Any) -> dict[str, str]:
    """The `POSTGRES_DEFAULTS` that a store URL's query (`URL.query`) does not set."""
    return {key: value for key, value in POSTGRES_DEFAULTS.items() if key not in query}


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(f"not a database URL: {display_url(url)}", field="db") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            # Everything written would be gone when the command ends.
            raise ConfigError(
                "an in-memory SQLite store keeps nothing; give a file (sqlite:///FILE)",
                field="db",
            )
        _create_private_file(Path(database))
    # Given to the driver, not written into the URL, which messages show.
    options = postgres_options(parsed.query) if parsed.get_backend_name() == "postgresql" else {}
    try:
        engine = create_engine(parsed, connect_args=options) if options else create_engine(parsed)
    except Exception as exc:  # unknown dialect, missing driver, bad query parameters
        raise ConfigError(f"cannot use database {display_url(url)}: {exc}", field="db") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _create_private_file(path: Path) -> None:
    """Create a new SQLite store owner-only (SQLite gives its -wal and -shm files the
    store's mode)."""
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not an SQLite file", field="db")
    if path.exists():
        return
    if not path.parent.is_dir():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot create the store {path}: {exc.strerror}") from None


def store_error(exc: SQLAlchemyError, url: str | None = None) -> StoreError:
    """The database's complaint as one clear error, never a traceback."""
    orig = getattr(exc, "orig", None) or exc
    text_ = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
    where = display_url(url) if url else "the store"
    lowered = text_.lower()
    if "database is locked" in lowered or "database table is locked" in lowered:
        return StoreError(
            f"{where} is locked by another writer and stayed locked longer than the "
            "busy timeout; try again when it has finished"
        )
    if "file is not a database" in lowered or "file is encrypted" in lowered:
        return StoreError(f"{where} is not an SQLite database")
    if "readonly" in lowered or "read-only" in lowered:
        return StoreError(f"{where} is read-only: {text_}")
    if "disk is full" in lowered or "no space" in lowered:
        return StoreError(f"{where}: the disk is full; nothing was changed")
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return StoreError(f"lost the connection to {where}: {text_}")
    return StoreError(f"{where}: database error: {text_}")


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
        raise store_error(exc, str(engine.url)) from None
    except SQLAlchemyError as exc:
        raise store_error(exc, str(engine.url)) from None
    return True


def check_schema(engine: Engine) -> list[str]:
    """What the store lacks of the schema this version expects: tables, columns,
    indexes, search indexes (a kill during a schema change, a hand edit). Empty when
    intact."""
    from pbx_connector.store.search import missing_search_index
    from pbx_connector.store.tables import metadata

    problems: list[str] = []
    try:
        with engine.connect() as conn:
            found = inspect(conn)
            tables = set(found.get_table_names())
            for table in metadata.sorted_tables:
                if table.name not in tables:
                    problems.append(f"table {table.name} is missing")
                    continue
                columns = {c["name"] for c in found.get_columns(table.name)}
                problems += [
                    f"column {table.name}.{c.name} is missing"
                    for c in table.columns
                    if c.name not in columns
                ]
                indexes = {ix["name"] for ix in found.get_indexes(table.name)}
                # Unique constraints are indexes on SQLite and constraints on PostgreSQL.
                indexes |= {uq["name"] for uq in found.get_unique_constraints(table.name)}
                problems += [
                    f"index {ix.name} is missing" for ix in table.indexes if ix.name not in indexes
                ]
            if not any(p.startswith(("table ", "column ")) for p in problems):
                problems += missing_search_index(conn)
    except SQLAlchemyError as exc:
        raise store_error(exc, str(engine.url)) from None
    return problems


def repair_schema(engine: Engine) -> list[str]:
    """Create what `check_schema` finds missing and can be made again (tables, indexes,
    search indexes). Returns what was repaired; raises StoreError for what cannot be."""
    from pbx_connector.store.search import repair_search_index
    from pbx_connector.store.tables import metadata

    problems = check_schema(engine)
    if not problems:
        return []
    missing_columns = [p for p in problems if p.startswith("column ")]
    if missing_columns:
        raise StoreError(
            "the schema cannot be repaired automatically: " + "; ".join(missing_columns)
        )
    try:
        with engine.begin() as conn:
            metadata.create_all(conn, checkfirst=True)
            found = inspect(conn)
            for table in metadata.sorted_tables:
                present = {ix["name"] for ix in found.get_indexes(table.name)}
                for ix in table.indexes:
                    if ix.name not in present:
                        ix.create(conn)
            repair_search_index(conn)
    except SQLAlchemyError as exc:
        raise store_error(exc, str(engine.url)) from None
    return problems


def open_store_engine(url: str | None) -> Engine:
    engine = make_engine(resolve_url(url))
    upgrade(engine)
    return engine
