"""API tokens: shown once, stored hashed, revocable, and only as good as their owner's
role."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.targets import TARGETS, clean_record
from pbx_connector.errors import NotFoundError, PermissionDenied, Unauthenticated, UsageError
from pbx_connector.service import App
from pbx_connector.store import records as record_store
from pbx_connector.store.tables import api_tokens, users
from tests.helpers import Cli


def _user(engine: Engine, username: str, roles: str = "") -> int:
    values = {"username": username, "roles": roles} if roles else {"username": username}
    with engine.begin() as conn:
        clean = clean_record(TARGETS["users"], values, PhoneNormaliser("DE"))
        return record_store.insert_record(conn, "users", clean)


@pytest.fixture
def app(engine: Engine) -> App:
    return App(engine)


def test_a_token_is_shown_once_and_kept_only_as_a_hash(app: App, engine: Engine) -> None:
    new = app.tokens.create("crm", role="admin")
    assert new.token.startswith("pbxc_") and len(new.token) > 40
    with engine.connect() as conn:
        stored = conn.execute(select(api_tokens)).one()
    assert new.token not in repr(tuple(stored)) and stored.prefix == new.token[:12]
    listed = app.tokens.list()
    assert [t.name for t in listed] == ["crm"] and listed[0].last_used is None
    assert new.token not in repr(listed)
    me = app.tokens.authenticate(new.token)
    assert (me.username, me.role, me.token_id) == ("admin", "admin", new.view.id)
    assert app.tokens.list()[0].last_used is not None


def test_a_revoked_or_unknown_token_is_refused(app: App) -> None:
    new = app.tokens.create("crm", role="viewer")
    app.tokens.revoke(new.view.id)
    with pytest.raises(Unauthenticated) as refused:
        app.tokens.authenticate(new.token)
    assert refused.value.http_status == 401
    with pytest.raises(Unauthenticated):
        app.tokens.authenticate("pbxc_" + "x" * 43)
    with pytest.raises(Unauthenticated):
        app.tokens.authenticate("Basic abc")
    with pytest.raises(NotFoundError):
        app.tokens.revoke(999)


def test_a_viewer_may_not_write(app: App) -> None:
    viewer = app.tokens.authenticate(app.tokens.create("wallboard", role="viewer").token)
    with pytest.raises(PermissionDenied) as denied:
        app.tokens.require_admin(viewer)
    assert denied.value.http_status == 403
    app.tokens.require_admin(app.tokens.authenticate(app.tokens.create("ops", role="admin").token))


def test_a_token_lives_only_as_long_as_its_owner_holds_the_role(app: App, engine: Engine) -> None:
    _user(engine, "zoe")
    with pytest.raises(UsageError, match="does not hold the role"):
        app.tokens.create("x", role="viewer", owner="zoe")
    uid = _user(engine, "yara", roles="admin")
    token = app.tokens.create("yara's", role="viewer", owner="YARA").token
    assert app.tokens.authenticate(token).username == "yara"
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == uid).values(roles=["sales"]))
    with pytest.raises(Unauthenticated):
        app.tokens.authenticate(token)
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == uid).values(roles=["viewer"], enabled=False))
    with pytest.raises(Unauthenticated):
        app.tokens.authenticate(token)
    with engine.begin() as conn:
        conn.execute(update(users).where(users.c.id == uid).values(enabled=True))
    assert app.tokens.authenticate(token).role == "viewer"
    assert [t.active for t in app.tokens.list()] == [True]


def test_an_expired_token_is_refused(app: App, engine: Engine) -> None:
    new = app.tokens.create("temp", role="admin", expires_days=1)
    assert new.view.expires is not None
    with engine.begin() as conn:
        conn.execute(update(api_tokens).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    with pytest.raises(Unauthenticated):
        app.tokens.authenticate(new.token)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "", "role": "admin"}, "name"),
        ({"name": "x", "role": "root"}, "role"),
        ({"name": "x", "role": "admin", "expires_days": 0}, "expires"),
        ({"name": "x", "role": "admin", "owner": "nobody"}, "owner"),
    ],
)
def test_bad_token_requests(app: App, kwargs: dict[str, object], field: str) -> None:
    rest = dict(kwargs)
    name = str(rest.pop("name"))
    with pytest.raises(UsageError) as refused:
        app.tokens.create(name, **rest)  # type: ignore[arg-type]
    assert refused.value.field == field


def test_tokens_on_the_command_line(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "store.db")
    created = cli("token", "create", "crm lookup", "--role", "viewer", "--expires", "30")
    token = created.stdout.strip()
    assert token.startswith("pbxc_") and "shown only this once" in created.stderr
    listed = cli("token", "list")
    assert "crm lookup" in listed.stdout and token not in listed.stdout
    assert cli.json("token", "list")[0]["active"] is True
    cli("token", "revoke", "1")
    assert cli.json("token", "list")[0]["revoked"] is not None
    assert "error:" in cli("token", "create", "x", "--role", "root", code=2).stderr
