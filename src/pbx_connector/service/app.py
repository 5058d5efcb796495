"""`App`: the store and every use case over it, grouped by what they are about.

    app = App.open("sqlite:///pbx.db")
    app.profiles.create("office", template="csv-phonebook", settings={"path": "…"})
    report = app.runs.run("office", dry_run=True)

Each function owns its transaction, raises the `errors.py` tree (a database failure is a
`StoreError`, never an SQLAlchemy exception), and returns pydantic models from
`pbx_connector.models`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, event
from sqlalchemy.exc import SQLAlchemyError

from pbx_connector.errors import StoreError
from pbx_connector.service.refresh import Refresher
from pbx_connector.store import db as store_db
from pbx_connector.store.async_readers import async_readers

#: The environment variable that names the store when no URL is given.
DB_ENV = store_db.ENV_DB


def database_error(exc: SQLAlchemyError, app: App | None = None) -> StoreError:
    """A database failure that escaped the core's own transactions, as one clear error."""
    return store_db.store_error(exc, str(app.engine.url) if app is not None else None)


class WouldWait(Exception):
    """A read that must not wait would have to (`App.no_wait_reader`): the caller asks
    again where it may wait. Never leaves the core."""


class App:
    def __init__(self, engine: Engine) -> None:
        from pbx_connector.service.auth import AuthService
        from pbx_connector.service.catalog import CatalogService
        from pbx_connector.service.deskphones import DeskphonesService
        from pbx_connector.service.imports import ImportsService
        from pbx_connector.service.lookup import LookupService
        from pbx_connector.service.profiles import ProfilesService
        from pbx_connector.service.records import RecordsService
        from pbx_connector.service.runs import RunsService
        from pbx_connector.service.schedules import SchedulesService
        from pbx_connector.service.sessions import SessionsService
        from pbx_connector.service.setup import SetupService
        from pbx_connector.service.tokens import TokensService
        from pbx_connector.service.uploads import UploadsService

        self.engine = engine
        #: Transactions committed through this engine by this process: what a cache of
        #: store reads (valid tokens, lookup settings) compares to drop its copy at once.
        self.commits = 0
        event.listen(engine, "commit", self._committed)
        #: Reads the caches of valid tokens and lookup settings again before they run
        #: out, off the request path (`service.refresh`).
        self.refresher = Refresher()
        self._no_wait = store_db.no_wait_readers(engine)
        #: A PostgreSQL store's connections for the lookups `serve` answers on its event
        #: loop (`store.async_readers`); None for SQLite.
        self.async_readers = async_readers(engine, store_db.display_url(str(engine.url)))
        # PostgreSQL: no BEGIN before, no ROLLBACK after a read of one statement or a
        # few independent ones (two round trips of three). SQLite's driver begins
        # nothing for a SELECT anyway.
        self._autocommit = (
            engine
            if engine.dialect.name == "sqlite"
            else engine.execution_options(isolation_level="AUTOCOMMIT")
        )
        self.catalog = CatalogService(self)
        self.profiles = ProfilesService(self)
        self.runs = RunsService(self)
        self.records = RecordsService(self)
        self.auth = AuthService(self)
        self.tokens = TokensService(self)
        self.sessions = SessionsService(self)
        self.setup = SetupService(self)
        self.uploads = UploadsService(self)
        self.imports = ImportsService(self)
        self.schedules = SchedulesService(self)
        self.deskphones = DeskphonesService(self)
        self.lookup = LookupService(self)

    @classmethod
    def open(cls, url: str | None = None) -> App:
        """The store at `url` (see `store.db.resolve_url`), its schema brought up to date."""
        return cls(store_db.open_store_engine(url))

    def _committed(self, _conn: Connection) -> None:
        self.commits += 1

    def permission_warnings(self) -> list[str]:
        """What other local users could read of the store (an SQLite file or its
        directory open to them), with the chmod that fixes it."""
        return store_db.permission_warnings(str(self.engine.url))

    def worker_environment(self) -> dict[str, str]:
        """The environment that makes `App.open()` in another process (a worker of
        `serve --workers N`) open this same store."""
        return {DB_ENV: self.engine.url.render_as_string(hide_password=False)}

    @property
    def url(self) -> str:
        """The store's URL without its password, for messages."""
        return store_db.display_url(str(self.engine.url))

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction; a database failure becomes a `StoreError`."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise store_db.store_error(exc, str(self.engine.url)) from None

    def no_wait_reader(self) -> sqlite3.Connection:
        """This thread's connection to an SQLite store that reads and never waits for a
        lock (`store.db.NoWaitReaders`); `WouldWait` on PostgreSQL."""
        if self._no_wait is None:
            raise WouldWait("every read of this store is a round trip")
        return self._no_wait.connection()

    @contextmanager
    def reading(self, *, one_snapshot: bool = True) -> Iterator[Connection]:
        """A connection for reads only. With `one_snapshot` False, each statement sees
        what was committed when it began (no transaction around them), which saves two
        round trips to PostgreSQL: for the reads of every request (a lookup, a token)."""
        try:
            with (self.engine if one_snapshot else self._autocommit).connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise store_db.store_error(exc, str(self.engine.url)) from None
