"""What the core keeps between a PBX's requests: a valid token and the lookup settings.
Any write this process commits drops both at once; another process's write is seen
within `VALID_FOR` / `SETTINGS_TTL`. And the large page cache of an SQLite import is
given back when the import ends."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from pbx_connector.errors import NotFoundError, Unauthenticated
from pbx_connector.service import App
from pbx_connector.service import lookup as lookup_service
from pbx_connector.service import tokens as tokens_service
from pbx_connector.store.db import DEFAULT_CACHE_KIB, IMPORT_CACHE_KIB, import_cache


@pytest.fixture
def app(engine: Engine) -> App:
    return App(engine)


def test_a_checked_token_is_known_without_the_store_until_anything_is_written(
    app: App,
) -> None:
    new = app.tokens.create("pbx", role="lookup")
    assert app.tokens.cached(new.token) is None  # never checked yet
    me = app.tokens.authenticate(new.token)
    assert app.tokens.cached(new.token) == me
    assert app.tokens.cached("pbxc_" + "x" * 43) is None
    app.tokens.revoke(new.view.id)
    # The revocation was committed here: the next request reads the store and is refused.
    assert app.tokens.cached(new.token) is None
    with pytest.raises(Unauthenticated):
        app.tokens.authenticate(new.token)


def test_a_disabled_owner_stops_a_cached_phone_token_at_once(app: App) -> None:
    alice = app.records.add("users", {"username": "alice", "extension": "101"})
    new = app.tokens.create("desk", role="phone", owner="alice")
    assert app.tokens.authenticate(new.token).username == "alice"
    assert app.tokens.cached(new.token) is not None
    app.records.edit("users", alice.id, {"enabled": "no"})
    assert app.tokens.cached(new.token) is None
    with pytest.raises(Unauthenticated):
        app.tokens.authenticate(new.token)


def test_a_revocation_by_another_process_is_seen_within_the_time_a_check_is_kept(
    app: App, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens_service, "VALID_FOR", 0.2)
    new = app.tokens.create("pbx", role="lookup")
    app.tokens.authenticate(new.token)
    # Another App on a second engine of the same store: what the CLI or another worker is.
    other = App.open(engine.url.render_as_string(hide_password=False))
    other.tokens.revoke(new.view.id)
    assert app.tokens.cached(new.token) is not None  # not seen yet: at most VALID_FOR
    time.sleep(0.25)
    assert app.tokens.cached(new.token) is None


def test_an_expired_token_is_not_taken_from_the_cache(app: App) -> None:
    new = app.tokens.create("pbx", role="lookup", expires_days=1)
    app.tokens.authenticate(new.token)
    cached = app.tokens._valid  # the one place that knows when it expires
    ((key, (checked, commits, _expires, principal)),) = cached.items()
    cached[key] = (checked, commits, datetime.now(UTC) - timedelta(seconds=1), principal)
    assert app.tokens.cached(new.token) is None


def test_changed_lookup_settings_apply_to_the_next_lookup(app: App) -> None:
    app.records.add("phonebook", {"displayname": "Vienna", "phone": "+43 1 234567"})
    with pytest.raises(NotFoundError):
        app.lookup.find("01 234567")  # German numbering: 01… is not Vienna
    app.catalog.set_config({"default_region": "AT"})
    assert app.lookup.find("01 234567").name == "Vienna"


def test_a_setting_saved_by_another_process_is_seen_within_its_time(
    app: App, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookup_service, "SETTINGS_TTL", 0.2)
    app.records.add("phonebook", {"displayname": "Vienna", "phone": "+43 1 234567"})
    with pytest.raises(NotFoundError):
        app.lookup.find("01 234567")
    other = App.open(engine.url.render_as_string(hide_password=False))
    other.catalog.set_config({"default_region": "AT"})
    time.sleep(0.25)
    assert app.lookup.find("01 234567").name == "Vienna"


def test_the_import_page_cache_is_given_back(engine: Engine) -> None:
    def cache_kib(conn: object) -> int:
        return -int(conn.exec_driver_sql("PRAGMA cache_size").scalar())  # type: ignore[attr-defined]

    if engine.dialect.name != "sqlite":
        with engine.begin() as conn, import_cache(conn):
            pass  # nothing to change on PostgreSQL, and nothing fails
        return
    with engine.begin() as conn:
        assert cache_kib(conn) == DEFAULT_CACHE_KIB
        with import_cache(conn):
            assert cache_kib(conn) == IMPORT_CACHE_KIB
        assert cache_kib(conn) == DEFAULT_CACHE_KIB
