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
from pbx_connector.store.tokens import token_hash


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
    # The kept check's lifetime is set, not slept through: a slow machine once took longer
    # than a short one to open the second App, and a sleep can only ever be too short.
    monkeypatch.setattr(tokens_service, "VALID_FOR", 3600.0)
    monkeypatch.setattr(tokens_service, "RECHECK_AFTER", 3600.0)
    new = app.tokens.create("pbx", role="lookup")
    app.tokens.authenticate(new.token)
    # Another App on a second engine of the same store: what the CLI or another worker is.
    other = App.open(engine.url.render_as_string(hide_password=False))
    other.tokens.revoke(new.view.id)
    assert app.tokens.cached(new.token) is not None  # not seen yet: at most VALID_FOR
    monkeypatch.setattr(tokens_service, "VALID_FOR", 0.0)  # the kept check has run out
    assert app.tokens.cached(new.token) is None
    with pytest.raises(Unauthenticated):
        app.tokens.authenticate(new.token)  # and the check in the store sees the revocation


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


def _checked_at(app: App, token: str) -> float:
    """When the cached check of `token` was made (the one place that knows)."""
    return app.tokens._valid[token_hash(token)][0]


def test_a_token_in_steady_use_is_checked_again_before_its_check_runs_out(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens_service, "VALID_FOR", 1.0)
    monkeypatch.setattr(tokens_service, "RECHECK_AFTER", 0.2)
    new = app.tokens.create("pbx", role="lookup")
    me = app.tokens.authenticate(new.token)
    first = _checked_at(app, new.token)
    time.sleep(0.25)
    # The copy answers, and a check is made again off the request path.
    assert app.tokens.cached(new.token) == me
    assert app.refresher.idle()
    again = _checked_at(app, new.token)
    assert again > first + 0.2
    time.sleep(max(0.0, first + 1.05 - time.monotonic()))
    # Past VALID_FOR since the first check, within it since the second: no request has
    # had to check the token in the store itself.
    assert time.monotonic() - again < 1.0
    assert app.tokens.cached(new.token) == me


def test_a_token_revoked_elsewhere_is_dropped_by_the_check_made_in_the_background(
    app: App, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens_service, "VALID_FOR", 30.0)
    monkeypatch.setattr(tokens_service, "RECHECK_AFTER", 0.05)
    new = app.tokens.create("pbx", role="lookup")
    app.tokens.authenticate(new.token)
    other = App.open(engine.url.render_as_string(hide_password=False))
    other.tokens.revoke(new.view.id)
    time.sleep(0.1)
    assert app.tokens.cached(new.token) is not None  # the copy, while it is checked again
    assert app.refresher.idle()
    # Found revoked long before VALID_FOR ran out.
    assert app.tokens.cached(new.token) is None
    with pytest.raises(Unauthenticated):
        app.tokens.authenticate(new.token)


def test_lookup_settings_in_steady_use_are_read_again_in_the_background(
    app: App, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lookup_service, "SETTINGS_TTL", 30.0)
    monkeypatch.setattr(lookup_service, "SETTINGS_REFRESH_AFTER", 0.05)
    app.records.add("phonebook", {"displayname": "Vienna", "phone": "+43 1 234567"})
    with pytest.raises(NotFoundError):
        app.lookup.find("01 234567")  # German numbering, read just now
    other = App.open(engine.url.render_as_string(hide_password=False))
    other.catalog.set_config({"default_region": "AT"})
    time.sleep(0.1)
    with pytest.raises(NotFoundError):
        app.lookup.find("01 234567")  # the copy answers, and is read again meanwhile
    assert app.refresher.idle()
    assert app.lookup.find("01 234567").name == "Vienna"
