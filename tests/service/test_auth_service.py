"""The authentication use cases of the application core, on SQLite and PostgreSQL, and
against real slapd servers for the directory: settings that never show the service
password, checks, "Test Authentication" with unsaved settings, and the audit log."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import timedelta
from functools import partial

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from pbx_connector.cli import app as cli_app
from pbx_connector.errors import ConfigError, StoreError, UsageError
from pbx_connector.models.auth import AuthSettingsView
from pbx_connector.service import App
from pbx_connector.service.auth import (
    PASSWORD_DESTINATION,
    SETTING_HELP,
    unsaved_settings,
)
from pbx_connector.store import auth_store
from pbx_connector.store import db as store_db
from pbx_connector.store.auth_store import AuthSettings
from tests.helpers import free_port
from tests.servers.slapd import ALICE, KNOWN_USERS, LOGLEVEL_ENV, SlapdServer, directory_tree

SERVICE_SECRET = "Svc-Secret-9"
IVAN_PASSWORD = "Ivan-pw-1"


@pytest.fixture
def app(engine: Engine) -> App:
    """The core over a fresh store; rejections are answered at once (no delay floor)."""
    core = App(engine)
    core.auth.update_settings({"failure_delay_ms": "0"})
    return core


def pbx(db_url: str, *args: str, stdin: str | None = None) -> None:
    """Set up the store as an administrator would: users come from the command line."""
    result = CliRunner().invoke(cli_app, ["--db", db_url, *args], input=stdin)
    assert result.exit_code == 0, (result.stdout, result.stderr)


def add_user(db_url: str, username: str, *, password: str = "", auth: str = "internal") -> None:
    pbx(db_url, "users", "add", f"username={username}", f"auth={auth}")
    if password:
        pbx(db_url, "users", "passwd", username, stdin=password + "\n")


# --- settings ---------------------------------------------------------------------------------


def test_settings_show_every_value_and_never_the_password(app: App) -> None:
    fresh = app.auth.settings()
    assert (fresh.mode, fresh.bind_password_set, fresh.timeout) == ("none", False, "5")
    assert "bind_password" not in AuthSettingsView.model_fields
    # Every setting but the secret is shown with its value; the secret only as "set".
    assert set(SETTING_HELP) - {"bind_password"} == set(AuthSettingsView.model_fields) - {
        "bind_password_set",
        "mode",
    }

    saved = app.auth.update_settings(
        {
            "bind_password": SERVICE_SECRET,
            "bind_dn": "cn=svc,dc=example,dc=test",
            "uri": "ldap://127.0.0.1:1",
            "search_base": "ou=people,dc=example,dc=test",
            "timeout": " 2.5 ",
        }
    )
    assert saved == app.auth.settings()
    assert (saved.mode, saved.bind_password_set, saved.timeout) == ("search", True, "2.5")
    for view in (saved, app.auth.settings()):
        assert SERVICE_SECRET not in view.model_dump_json()
        assert SERVICE_SECRET not in repr(view)


def test_settings_are_validated_and_nothing_is_saved_on_an_error(app: App) -> None:
    before = app.auth.settings()
    with pytest.raises(ConfigError) as bad:
        app.auth.update_settings({"lockout_failures": "3", "lockout_seconds": "inf"})
    assert bad.value.field == "lockout_seconds"
    with pytest.raises(ConfigError, match="unknown authentication setting"):
        app.auth.update_settings({"colour": "blue"})
    with pytest.raises(ConfigError, match="security=ldaps"):
        app.auth.update_settings({"uri": "ldaps://a"})
    assert app.auth.settings() == before


# --- check ------------------------------------------------------------------------------------


def test_check_accepts_the_right_password_only(app: App, db_url: str) -> None:
    add_user(db_url, "ivan", password=IVAN_PASSWORD)
    accepted = app.auth.check("IVAN", IVAN_PASSWORD)
    assert (accepted.accepted, accepted.outcome, accepted.reason) == (True, "accepted", "accepted")
    wrong = app.auth.check("ivan", "wrong", origin="web")
    assert (wrong.accepted, wrong.outcome, wrong.reason) == (False, "rejected", "bad_password")
    unknown = app.auth.check("nobody", IVAN_PASSWORD, origin="api")
    assert (unknown.accepted, unknown.reason) == (False, "unknown_user")
    assert IVAN_PASSWORD not in accepted.model_dump_json() + unknown.model_dump_json()

    log = app.auth.log()
    assert [(a.username, a.reason, a.origin) for a in log.items] == [
        ("nobody", "unknown_user", "api"),
        ("ivan", "bad_password", "web"),
        ("ivan", "accepted", "cli"),
    ]
    assert IVAN_PASSWORD not in log.model_dump_json()


@pytest.mark.parametrize("origin", ["", "x" * 33, "cli\n"])
def test_check_refuses_an_origin_the_log_cannot_keep(app: App, origin: str) -> None:
    with pytest.raises(UsageError) as refused:
        app.auth.check("ivan", IVAN_PASSWORD, origin=origin)
    assert refused.value.field == "origin"
    assert app.auth.log().total == 0


def test_a_store_that_stays_locked_is_a_store_error(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No answer, and the core's own error: the API maps it to 503, the CLI to code 3."""
    monkeypatch.setenv(store_db.ENV_BUSY_TIMEOUT, "0.2")
    core = App.open(sqlite_url)
    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="locked"):
            core.auth.check("ivan", IVAN_PASSWORD)
        with pytest.raises(StoreError, match="locked"):
            core.auth.update_settings({"timeout": "3"})
        assert core.auth.settings().timeout == "5"  # reading goes on beside a writer
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        core.engine.dispose()


# --- test -------------------------------------------------------------------------------------


def test_test_returns_every_step_as_it_is_taken(app: App, db_url: str) -> None:
    add_user(db_url, "ivan", password=IVAN_PASSWORD)
    seen: list[str] = []
    result = app.auth.test("ivan", IVAN_PASSWORD, on_step=seen.append)
    assert result.accepted and result.method == "internal"
    assert result.steps == seen
    assert result.steps[-1] == "result: accepted (accepted)"
    assert "local password matches" in result.steps
    rejected = app.auth.test("ghost", "x")
    assert (rejected.accepted, rejected.reason, rejected.method) == (False, "unknown_user", None)
    assert [a.origin for a in app.auth.log().items] == ["test", "test"]


def _saved(**values: str) -> AuthSettings:
    base = {"uri": "ldap://ldap1.example.test", "security": "starttls", "verify": "yes"}
    return AuthSettings(
        {**base, "bind_dn": "cn=svc,dc=example,dc=test", "search_base": "dc=example,dc=test"}
        | values,
        SERVICE_SECRET,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("uri", "ldap://attacker.example.test"),
        ("security", "none"),
        ("ca_file", "/tmp/other-ca.pem"),
        ("verify", "no"),
        ("bind_dn", "cn=other,dc=example,dc=test"),
    ],
)
def test_the_stored_password_goes_only_where_the_saved_settings_send_it(
    name: str, value: str
) -> None:
    assert name in PASSWORD_DESTINATION
    cfg, notes = unsaved_settings(_saved(), {name: value})
    assert cfg.get(name) == value.strip()
    assert cfg.bind_password == ""
    assert any(f"the saved bind_password is not used: {name} differs" in n for n in notes)
    assert not any(SERVICE_SECRET in n for n in notes)
    # A password given with the settings is the one used.
    cfg, _ = unsaved_settings(_saved(), {name: value, "bind_password": "Given-1"})
    assert cfg.bind_password == "Given-1"


def test_other_unsaved_settings_keep_the_stored_password() -> None:
    cfg, notes = unsaved_settings(
        _saved(), {"user_filter": "(objectClass=person)", "timeout": "2", "uri": " "}
    )
    assert cfg.bind_password == ""  # an emptied uri is a change of destination too
    cfg, notes = unsaved_settings(_saved(), {"user_filter": "(objectClass=person)"})
    assert cfg.bind_password == SERVICE_SECRET
    assert notes == ["testing unsaved settings (changed: user_filter)"]


def test_unsaved_lockout_and_delay_stay_as_saved() -> None:
    saved = _saved(lockout_failures="5", failure_delay_ms="250")
    cfg, notes = unsaved_settings(saved, {"lockout_failures": "1", "failure_delay_ms": "0"})
    assert (cfg.get("lockout_failures"), cfg.get("failure_delay_ms")) == ("5", "250")
    assert "lockout_failures, failure_delay_ms: not used by a test" in notes[1]
    with pytest.raises(ConfigError):
        unsaved_settings(saved, {"lockout_failures": "nan"})


def test_a_test_of_unsaved_settings_saves_nothing(app: App, db_url: str) -> None:
    add_user(db_url, "alice", auth="ldap")
    before = app.auth.settings()
    result = app.auth.test(
        "alice",
        ALICE.password,
        settings={"uri": f"ldap://127.0.0.1:{free_port()}", "bind_user": "%@example.test"},
    )
    assert not result.accepted and result.reason == "directory_unavailable"
    assert result.steps[0] == "testing unsaved settings (changed: uri, bind_user)"
    assert app.auth.settings() == before
    with pytest.raises(ConfigError):
        app.auth.test("alice", ALICE.password, settings={"bind_user": "no-percent"})


# --- test against slapd -----------------------------------------------------------------------


def save_search_then_bind(app: App, server: SlapdServer) -> None:
    app.auth.update_settings(
        {
            "uri": server.uri,
            "ca_file": str(server.ca_file),
            "bind_dn": server.reader_dn,
            "bind_password": server.reader_password,
            "search_base": f"ou=people,{server.suffix}",
            "user_attribute": "uid",
        }
    )


def binds_as(server: SlapdServer, dn: str) -> int:
    return server.log_file.read_text(errors="replace").count(f'BIND dn="{dn}"')


@pytest.mark.slapd
def test_unsaved_settings_that_change_the_uri_never_send_the_stored_password(
    app: App,
    db_url: str,
    slapd_server: SlapdServer,
    slapd_factory: Callable[..., SlapdServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    add_user(db_url, "alice", auth="ldap")
    save_search_then_bind(app, slapd_server)
    assert app.auth.test("alice", ALICE.password).accepted  # the saved settings work
    # Another server that logs every bind, and that would take the stored password.
    monkeypatch.setenv(LOGLEVEL_ENV, "stats")
    other = slapd_factory(entries=partial(directory_tree, users=len(KNOWN_USERS), contacts=0))
    assert other.reader_password == slapd_server.reader_password

    moved = {"uri": other.uri, "ca_file": str(other.ca_file)}
    result = app.auth.test("alice", ALICE.password, settings=moved)
    assert (result.accepted, result.reason) == (False, "directory_unavailable")
    assert any("the saved bind_password is not used: uri" in s for s in result.steps)
    assert any("the bind password is empty" in s for s in result.steps)
    assert not any(s.startswith("contacting") for s in result.steps)
    assert binds_as(other, other.reader_dn) == 0
    assert slapd_server.reader_password not in result.model_dump_json()

    # With the service password given alongside, the other server is tested for real.
    given = {**moved, "bind_password": other.reader_password}
    result = app.auth.test("alice", ALICE.password, settings=given)
    assert result.accepted, result.steps
    assert f"contacting {other.uri} (security: starttls, timeout 5 s)" in result.steps
    assert binds_as(other, other.reader_dn) >= 1
    assert other.reader_password not in result.model_dump_json()
    assert app.auth.settings().uri == slapd_server.uri  # nothing was saved


@pytest.mark.slapd
def test_unsaved_settings_for_the_same_server_use_the_stored_password(
    app: App, db_url: str, slapd_server: SlapdServer
) -> None:
    add_user(db_url, "alice", auth="ldap")
    save_search_then_bind(app, slapd_server)
    narrower = {"user_filter": "(objectClass=inetOrgPerson)"}
    result = app.auth.test("alice", ALICE.password, settings=narrower)
    assert result.accepted, result.steps
    assert result.steps[0] == "testing unsaved settings (changed: user_filter)"
    assert f"found uid=alice,ou=people,{slapd_server.suffix}" in result.steps
    nobody = {"user_filter": "(objectClass=device)"}
    result = app.auth.test("alice", ALICE.password, settings=nobody)
    assert result.reason == "not_in_directory"


# --- the audit log ----------------------------------------------------------------------------


def test_log_pages_newest_first_with_totals(app: App, db_url: str) -> None:
    add_user(db_url, "ivan", password=IVAN_PASSWORD)
    for i in range(5):
        app.auth.check("ivan", IVAN_PASSWORD if i % 2 else "wrong")
    app.auth.check("ghost", "x")
    app.auth.check("ghost", "y")

    everything = app.auth.log()
    assert everything.total == 7 and len(everything.items) == 7
    assert [a.username for a in everything.items[:2]] == ["ghost", "ghost"]
    assert all(a.at.utcoffset() == timedelta(0) for a in everything.items)  # UTC everywhere

    first, second, last = (app.auth.log(limit=3, offset=o) for o in (0, 3, 6))
    assert first.total == second.total == last.total == 7
    assert [len(p.items) for p in (first, second, last)] == [3, 3, 1]
    assert first.items + second.items + last.items == everything.items
    assert app.auth.log(limit=3, offset=7).items == []

    ivan = app.auth.log(" IVAN ", limit=2)  # spelt as a user may type it
    assert ivan.total == 5 and [a.reason for a in ivan.items] == ["bad_password", "accepted"]
    assert app.auth.log("nobody").total == 0


@pytest.mark.parametrize(
    ("limit", "offset", "field"),
    [(0, 0, "limit"), (-1, 0, "limit"), (10, -1, "offset"), (2**63, 0, "limit")],
)
def test_log_refuses_a_page_the_store_cannot_give(
    app: App, limit: int, offset: int, field: str
) -> None:
    with pytest.raises(UsageError) as refused:
        app.auth.log(limit=limit, offset=offset)
    assert refused.value.field == field


def test_the_audit_log_never_holds_a_password(app: App, engine: Engine) -> None:
    app.auth.check("ivan", "Guess-1234")
    with engine.connect() as conn:
        rows = auth_store.list_attempts(conn)
    assert "Guess-1234" not in repr(rows) + app.auth.log().model_dump_json()
