"""Authentication over HTTP against a real `serve`: the directory settings with a
write-only service password, checks and tests of local and directory users, the audit
log, and every way a request can be refused. No password may appear in any response
or in the server's log."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from pbx_connector.api.routes.auth import SettingsChange
from pbx_connector.service.auth import SETTING_HELP
from tests.api.conftest import Server
from tests.servers.slapd import ALICE, KNOWN_USERS, LOGLEVEL_ENV, SlapdServer, directory_tree

SERVICE_SECRET = "Svc-Secret-9317"
CAROL_PASSWORD = "Carol-pw-5521"
WRONG_PASSWORD = "Wrong-guess-4410"

SETTINGS = "/api/v1/auth/settings"
CHECK = "/api/v1/auth/check"
TEST = "/api/v1/auth/test"
LOG = "/api/v1/auth/log"


def _client(server: Server, token: str | None, seen: list[str]) -> httpx.Client:
    """A client that keeps every response body, so a test can show that no password
    came back in any of them."""
    client = server.client(token)

    def keep(response: httpx.Response) -> None:
        response.read()
        seen.append(response.text)

    client.event_hooks["response"].append(keep)
    return client


def _never_shown(seen: list[str], tmp_path: Path, *secrets: str) -> None:
    """Neither a response nor the server's log holds any of `secrets`."""
    assert seen
    server_log = (tmp_path / "serve.log").read_text()
    for secret in secrets:
        assert not any(secret in body for body in seen), secret
        assert secret not in server_log, secret


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def _error(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = dict(response.json()["error"])
    assert error["status"] == status and error["message"]
    if field is not None:
        assert error["field"] == field, error
    return error


def _no_delay(client: httpx.Client, **more: str) -> None:
    """Rejections answered at once, so that the tests stay quick."""
    _ok(client.patch(SETTINGS, json={"failure_delay_ms": 0, **more}))


def test_settings_round_trip_with_a_write_only_password_and_every_refusal(
    server: Server, tmp_path: Path
) -> None:
    seen: list[str] = []
    # Every setting of the core can be changed here, and only those.
    assert set(SettingsChange.model_fields) == set(SETTING_HELP)
    with _client(server, server.admin_token, seen) as admin:
        fresh = _ok(admin.get(SETTINGS))
        assert (fresh["mode"], fresh["bind_password_set"]) == ("none", False)
        change = {
            "uri": "ldap://127.0.0.1:1",
            "bind_dn": "cn=svc,dc=example,dc=test",
            "bind_password": SERVICE_SECRET,
            "search_base": "ou=people,dc=example,dc=test",
            "timeout": 2.5,  # a JSON number is taken as its text
            "failure_delay_ms": "0",
        }
        saved = _ok(admin.patch(SETTINGS, json=change))
        assert (saved["mode"], saved["bind_password_set"], saved["timeout"]) == (
            "search",
            True,
            "2.5",
        )
        assert "bind_password" not in saved
        assert _ok(admin.get(SETTINGS)) == saved
        assert _ok(admin.patch(SETTINGS, json={})) == saved  # nothing given, nothing changed

        # Invalid values are 422 naming the setting, and nothing is saved.
        _error(admin.patch(SETTINGS, json={"lockout_failures": "nan"}), 422, "lockout_failures")
        nan = admin.patch(
            SETTINGS,
            content=b'{"timeout": "3", "lockout_seconds": NaN}',
            headers={"Content-Type": "application/json"},
        )
        _error(nan, 422, "lockout_seconds")
        _error(admin.patch(SETTINGS, json={"security": "tls"}), 422, "security")
        _error(admin.patch(SETTINGS, json={"colour": "blue"}), 422, "colour")
        _error(admin.patch(SETTINGS, json={"bind_password_set": False}), 422, "bind_password_set")
        _error(admin.patch(SETTINGS, json={"timeout": ["3"]}), 422, "timeout")
        _error(admin.patch(SETTINGS, content=b"timeout=3"), 422)
        assert _ok(admin.get(SETTINGS)) == saved

        # Requests that are malformed, whichever route.
        _error(admin.post(CHECK, json={"username": "carol"}), 422, "password")
        _error(admin.post(CHECK, json={"username": "carol", "password": 1, "x": 1}), 422)
        bad_test = {"username": "carol", "password": "x", "settings": {"timeout": "0"}}
        _error(admin.post(TEST, json=bad_test), 422, "settings.timeout")
        bad_test["settings"] = {"uri": "ldap://127.0.0.1:1", "verify": "maybe"}
        _error(admin.post(TEST, json=bad_test), 422, "settings.verify")
        _error(admin.get(LOG, params={"limit": 0}), 422, "limit")
        _error(admin.get(LOG, params={"limit": 1001}), 422, "limit")
        _error(admin.get(LOG, params={"offset": -1}), 422, "offset")

        created = admin.post("/api/v1/tokens", json={"name": "wallboard", "role": "viewer"})
        viewer_token = created.json()["token"]

    # A viewer reads the audit log, nothing else of authentication.
    with _client(server, viewer_token, seen) as viewer:
        assert _ok(viewer.get(LOG))["total"] == 0
        _error(viewer.get(SETTINGS), 403)
        _error(viewer.patch(SETTINGS, json={"uri": "ldap://attacker.example.test"}), 403)
        _error(viewer.post(CHECK, json={"username": "carol", "password": WRONG_PASSWORD}), 403)
        _error(viewer.post(TEST, json={"username": "carol", "password": WRONG_PASSWORD}), 403)
    # No token, or an unknown one: 401 everywhere.
    for token in (None, "pbxc_not-a-real-token"):
        with _client(server, token, seen) as anonymous:
            _error(anonymous.get(SETTINGS), 401)
            _error(anonymous.patch(SETTINGS, json={"uri": ""}), 401)
            _error(anonymous.post(CHECK, json={"username": "a", "password": "b"}), 401)
            _error(anonymous.post(TEST, json={"username": "a", "password": "b"}), 401)
            _error(anonymous.get(LOG), 401)

    with _client(server, server.admin_token, seen) as admin:
        assert _ok(admin.get(SETTINGS)) == saved  # the refused writes changed nothing
        assert _ok(admin.get(LOG))["total"] == 0  # and no refused request was an attempt
        cleared = _ok(admin.patch(SETTINGS, json={"bind_password": ""}))
        assert cleared["bind_password_set"] is False
    _never_shown(seen, tmp_path, SERVICE_SECRET, WRONG_PASSWORD)


def test_checks_and_tests_of_a_local_user_are_logged_and_count_toward_the_lockout(
    server: Server, tmp_path: Path
) -> None:
    server.cli("users", "add", "username=carol")
    server.cli("users", "passwd", "carol", stdin=f"{CAROL_PASSWORD}\n")
    seen: list[str] = []
    with _client(server, server.admin_token, seen) as admin:
        _no_delay(admin, lockout_failures="3")

        def check(username: str, password: str) -> tuple[bool, str, str]:
            body = _ok(admin.post(CHECK, json={"username": username, "password": password}))
            return body["accepted"], body["outcome"], body["reason"]

        def test(password: str) -> dict[str, Any]:
            return _ok(admin.post(TEST, json={"username": "carol", "password": password}))

        assert check("carol", CAROL_PASSWORD) == (True, "accepted", "accepted")
        assert check("Carol", WRONG_PASSWORD) == (False, "rejected", "bad_password")
        assert check("ghost", CAROL_PASSWORD) == (False, "rejected", "unknown_user")

        passed = test(CAROL_PASSWORD)
        assert (passed["accepted"], passed["method"]) == (True, "internal")
        assert "local password matches" in passed["steps"]
        assert passed["steps"][-1] == "result: accepted (accepted)"
        failed = test(WRONG_PASSWORD)
        assert (failed["accepted"], failed["reason"]) == (False, "bad_password")
        assert failed["steps"][-1] == "result: rejected (bad_password)"

        # The failed test and two failed checks in a row lock carol (lockout_failures=3):
        # now even the right password is refused without being checked.
        assert check("carol", WRONG_PASSWORD)[2] == "bad_password"
        assert check("carol", WRONG_PASSWORD)[2] == "bad_password"
        assert check("carol", CAROL_PASSWORD) == (False, "refused", "locked")

        log = _ok(admin.get(LOG))
        assert log["total"] == 8
        rows = [(a["username"], a["outcome"], a["reason"], a["origin"]) for a in log["items"]]
        assert rows == [
            ("carol", "refused", "locked", "api"),
            ("carol", "rejected", "bad_password", "api"),
            ("carol", "rejected", "bad_password", "api"),
            ("carol", "rejected", "bad_password", "test"),
            ("carol", "accepted", "accepted", "test"),
            ("ghost", "rejected", "unknown_user", "api"),
            ("carol", "rejected", "bad_password", "api"),
            ("carol", "accepted", "accepted", "api"),
        ]
        assert all(a["at"].endswith("Z") and a["method"] for a in log["items"])
        page = _ok(admin.get(LOG, params={"username": " CAROL ", "limit": 2, "offset": 5}))
        assert page["total"] == 7
        assert [a["reason"] for a in page["items"]] == ["bad_password", "accepted"]
        assert _ok(admin.get(LOG, params={"username": "nobody"})) == {
            "items": [],
            "total": 0,
            "total_exact": True,
        }
    _never_shown(seen, tmp_path, CAROL_PASSWORD, WRONG_PASSWORD)


def _binds_as(server: SlapdServer, dn: str) -> int:
    return server.log_file.read_text(errors="replace").count(f'BIND dn="{dn}"')


@pytest.mark.slapd
def test_a_directory_user_and_unsaved_settings_that_never_get_the_stored_password(
    server: Server,
    tmp_path: Path,
    slapd_server: SlapdServer,
    slapd_factory: Callable[..., SlapdServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server.cli("users", "add", "username=alice", "auth=ldap")
    directory = slapd_server
    alice_password = ALICE.password
    assert alice_password
    seen: list[str] = []
    with _client(server, server.admin_token, seen) as admin:
        _no_delay(
            admin,
            uri=directory.uri,
            ca_file=str(directory.ca_file),
            bind_dn=directory.reader_dn,
            bind_password=directory.reader_password,
            search_base=f"ou=people,{directory.suffix}",
            user_attribute="uid",
            timeout="3",
        )
        alice = {"username": "alice", "password": alice_password}
        passed = _ok(admin.post(TEST, json=alice))
        assert (passed["accepted"], passed["method"]) == (True, "ldap"), passed["steps"]
        assert f"contacting {directory.uri} (security: starttls, timeout 3 s)" in passed["steps"]
        assert f"found uid=alice,ou=people,{directory.suffix}" in passed["steps"]
        wrong = _ok(admin.post(CHECK, json={**alice, "password": WRONG_PASSWORD}))
        assert (wrong["accepted"], wrong["reason"]) == (False, "bad_password")

        # Another server that logs every bind, and would gladly take the stored password.
        monkeypatch.setenv(LOGLEVEL_ENV, "stats")
        other = slapd_factory(entries=partial(directory_tree, users=len(KNOWN_USERS), contacts=0))
        moved = {"uri": other.uri, "ca_file": str(other.ca_file)}
        refused = _ok(admin.post(TEST, json={**alice, "settings": moved}))
        assert (refused["accepted"], refused["reason"]) == (False, "directory_unavailable")
        steps = refused["steps"]
        assert steps[0] == "testing unsaved settings (changed: uri, ca_file)"
        assert steps[1].startswith("the saved bind_password is not used: uri, ca_file differ")
        assert not any(s.startswith("contacting") for s in steps)
        assert _binds_as(other, other.reader_dn) == 0

        # With the service password given alongside, the other server is tested for real.
        given = {**moved, "bind_password": other.reader_password}
        tested = _ok(admin.post(TEST, json={**alice, "settings": given}))
        assert tested["accepted"], tested["steps"]
        assert (
            tested["steps"][0] == "testing unsaved settings (changed: uri, ca_file, bind_password)"
        )
        assert _binds_as(other, other.reader_dn) >= 1

        saved = _ok(admin.get(SETTINGS))  # nothing of the tests was saved
        assert (saved["uri"], saved["bind_password_set"]) == (directory.uri, True)
        origins = [a["origin"] for a in _ok(admin.get(LOG))["items"]]
        assert origins == ["test", "test", "api", "test"]
    _never_shown(seen, tmp_path, directory.reader_password, alice_password, WRONG_PASSWORD)
