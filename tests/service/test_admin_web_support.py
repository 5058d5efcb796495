"""What the Authentication and Settings pages ask of the application core beyond what the
command line needs: the audit log filtered by outcome and origin, and the choices a form
offers for a setting. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from pbx_connector.cli import app as cli_app
from pbx_connector.errors import ConfigError, NotFoundError, UsageError
from pbx_connector.models.auth import AUTH_ORIGINS, AUTH_OUTCOMES
from pbx_connector.service import App
from pbx_connector.service.auth import SETTING_CHOICES, SETTING_HELP

IVAN_PASSWORD = "Ivan-pw-1"


@pytest.fixture
def app(engine: Engine) -> App:
    core = App(engine)
    core.auth.update_settings({"failure_delay_ms": "0", "lockout_failures": "2"})
    return core


def _add_ivan(db_url: str) -> None:
    runner = CliRunner()
    added = runner.invoke(cli_app, ["--db", db_url, "users", "add", "username=ivan"])
    assert added.exit_code == 0, added.stdout
    passwd = runner.invoke(
        cli_app, ["--db", db_url, "users", "passwd", "ivan"], input=IVAN_PASSWORD + "\n"
    )
    assert passwd.exit_code == 0, passwd.stdout


def test_the_log_is_filtered_by_outcome_and_origin_and_paged(app: App, db_url: str) -> None:
    _add_ivan(db_url)
    app.auth.check("ivan", IVAN_PASSWORD, origin="web")  # accepted, web
    app.auth.check("ivan", "wrong", origin="web")  # rejected, web
    app.auth.test("ivan", "wrong")  # rejected, test: ivan is now locked (2 failures)
    app.auth.check("ivan", IVAN_PASSWORD, origin="api")  # refused, api
    app.auth.check("ghost", "x", origin="cli")  # rejected, cli

    everything = app.auth.log()
    assert everything.total == 5
    # No filter given: the same page as before the filters existed.
    assert app.auth.log(outcome=None, origin=None) == everything

    rejected = app.auth.log(outcome="rejected")
    assert rejected.total == 3
    assert [(a.username, a.origin) for a in rejected.items] == [
        ("ghost", "cli"),
        ("ivan", "test"),
        ("ivan", "web"),
    ]
    assert all(a.at.utcoffset() == timedelta(0) for a in rejected.items)
    assert [a.reason for a in app.auth.log(outcome="refused").items] == ["locked"]
    web = app.auth.log(origin="web")
    assert web.total == 2 and [a.outcome for a in web.items] == ["rejected", "accepted"]
    # Every filter at once, with the username spelt any way.
    both = app.auth.log(" IVAN ", outcome="rejected", origin="test")
    assert both.total == 1 and both.items[0].method == "internal"
    # Paged like the whole log: the total is of every match, the items of one page.
    first = app.auth.log(outcome="rejected", limit=2)
    second = app.auth.log(outcome="rejected", limit=2, offset=2)
    assert first.total == second.total == 3
    assert first.items + second.items == rejected.items
    assert app.auth.log(origin="nowhere").total == 0
    assert app.auth.log("ghost", outcome="accepted").items == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"outcome": "maybe"}, "outcome"),
        ({"outcome": ""}, "outcome"),
        ({"origin": ""}, "origin"),
        ({"origin": "x" * 33}, "origin"),
    ],
)
def test_a_filter_the_log_cannot_have_is_refused(
    app: App, kwargs: dict[str, str], field: str
) -> None:
    with pytest.raises(UsageError) as refused:
        app.auth.log(**kwargs)  # type: ignore[arg-type]
    assert refused.value.field == field


def test_the_words_the_forms_offer_are_the_core_s() -> None:
    assert AUTH_OUTCOMES == ("accepted", "rejected", "refused")
    assert set(AUTH_ORIGINS) == {"cli", "api", "web", "test"}
    assert set(SETTING_CHOICES) <= set(SETTING_HELP)
    assert SETTING_CHOICES["verify"] == ("yes", "no")
    assert set(SETTING_CHOICES["security"]) == {"ldaps", "starttls", "none"}


def test_each_offered_choice_is_accepted_and_others_are_not(app: App) -> None:
    for name, choices in SETTING_CHOICES.items():
        for choice in choices:
            assert getattr(app.auth.update_settings({name: choice}), name) == choice
        with pytest.raises(ConfigError) as refused:
            app.auth.update_settings({name: "sometimes"})
        assert refused.value.field == name


def test_one_token_is_read_by_its_id_without_its_secret(app: App) -> None:
    new = app.tokens.create("wallboard", role="viewer", expires_days=30)
    one = app.tokens.get(new.view.id)
    assert one == new.view and one.active and one.expires is not None
    assert new.token not in one.model_dump_json()
    app.tokens.revoke(new.view.id)
    revoked = app.tokens.get(new.view.id)
    assert revoked.revoked is not None and not revoked.active
    for missing in (new.view.id + 1, 0, -1, 2**63):
        with pytest.raises(NotFoundError):
            app.tokens.get(missing)
