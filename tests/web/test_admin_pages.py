"""The Authentication and Settings pages over HTTP against a real `serve` (SQLite and
PostgreSQL), with real slapd servers for Test Authentication: what the store holds after
each form (read back with the command line), what the page shows, and that no password
ever comes back in a response."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import partial
from html import unescape as html_text
from pathlib import Path
from typing import Any

import httpx
import pytest

from pbx_connector.service.auth import SETTING_HELP
from pbx_connector.web.admin_pages import AUTH_FIELDS, LOG_PAGE
from tests.api.conftest import Server
from tests.servers.slapd import ALICE, KNOWN_USERS, LOGLEVEL_ENV, SlapdServer, directory_tree
from tests.web.conftest import VIEWER_PASSWORD, add_user, csrf_of, sign_in

SERVICE_SECRET = "Svc-Secret-7731"
OTHER_SECRET = "Other-Secret-2290"
WRONG_PASSWORD = "Wrong-guess-5150"


class Browser:
    """A signed-in client that posts forms as the pages do (own Origin, the session's
    CSRF token) and keeps every response body, so that a test can show that no secret
    came back in any of them."""

    def __init__(self, server: Server, username: str = "admin", password: str = "") -> None:
        self.server = server
        self.client = httpx.Client(base_url=server.url, timeout=60)
        self.seen: list[str] = []
        self.client.event_hooks["response"].append(self._keep)
        signed = sign_in(self.client, username, password) if password else sign_in(self.client)
        assert signed.status_code == 303, signed.text
        self.csrf = csrf_of(self.client)

    def _keep(self, response: httpx.Response) -> None:
        response.read()
        self.seen.append(response.text)

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params) if params else self.client.get(path)

    def post(
        self, path: str, data: dict[str, str], *, htmx: bool = False, csrf: bool = True
    ) -> httpx.Response:
        headers = {"Origin": self.server.url}
        if htmx:
            headers["HX-Request"] = "true"
        body = {"csrf_token": self.csrf, **data} if csrf else data
        return self.client.post(path, data=body, headers=headers)

    def never_shown(self, tmp_path: Path, *secrets: str) -> None:
        assert self.seen
        server_log = (tmp_path / "serve.log").read_text()
        for secret in secrets:
            assert not any(secret in body for body in self.seen), secret
            assert secret not in server_log, secret

    def close(self) -> None:
        self.client.close()


def _auth_settings(server: Server) -> dict[str, str]:
    return dict(json.loads(server.cli("auth", "settings", "--json").stdout))


def _auth_log(server: Server) -> list[dict[str, str]]:
    return list(json.loads(server.cli("auth", "log", "--json").stdout))


def _form_values(html: str) -> dict[str, str]:
    """The settings form as a browser would send it: every text input's value and each
    select's chosen option (what htmx's hx-include sends along with a test)."""
    form = html[html.index('<form id="auth-settings"') :]
    form = form[: form.index("</form>")]
    values = {
        m[1]: m[2]
        for m in re.finditer(
            r'<input id="(\w+)" name="\w+"\s+type="text"\s+(?:inputmode="\w+" )?value="([^"]*)"',
            form,
        )
    }
    for select in re.finditer(r'<select id="(\w+)".*?</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', select[0])
        assert chosen, select[0]
        values[select[1]] = chosen[1]
    assert set(values) == set(AUTH_FIELDS) - {"bind_password"}, values
    return values


def _error_of(html: str, field: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field}-error"[^>]*>([^<]*)</p>', html)
    assert match, html
    return html_text(match[1])


def _steps(html: str) -> list[str]:
    match = re.search(r'<ol class="adm-steps" id="auth-test-steps">(.*?)</ol>', html, re.S)
    assert match, html
    return [html_text(s) for s in re.findall(r"<li>(.*?)</li>", match[1])]


# --- Authentication: the settings -------------------------------------------------------------


def test_authentication_settings_save_with_a_write_only_password(
    web: Server, tmp_path: Path
) -> None:
    # The form has every setting of the core, each with a label and its help text.
    assert set(AUTH_FIELDS) == set(SETTING_HELP)
    browser = Browser(web)
    try:
        page = browser.get("/authentication")
        assert page.status_code == 200
        for name in AUTH_FIELDS:
            assert f'<label for="{name}">' in page.text, name
            assert f'id="{name}-help"' in page.text, name
        assert 'id="bind_password-state"><span class="badge">not set</span>' in page.text
        assert 'name="bind_password_clear"' not in page.text  # nothing to clear yet

        change = {
            "uri": "ldap://127.0.0.1:1",
            "bind_dn": "cn=svc,dc=example,dc=test",
            "bind_password": SERVICE_SECRET,
            "search_base": "ou=people,dc=example,dc=test",
            "timeout": "2.5",
        }
        saved = browser.post("/authentication/settings", change)
        assert saved.status_code == 303 and saved.headers["location"] == "/authentication?saved=1"
        stored = _auth_settings(web)
        assert stored["uri"] == "ldap://127.0.0.1:1" and stored["timeout"] == "2.5"
        assert (stored["bind_password"], stored["mode"]) == ("(set)", "search")
        assert stored["failure_delay_ms"] == "0"  # untouched settings stay as they were

        page = browser.get("/authentication", saved="1")
        assert "The authentication settings are saved." in page.text
        assert 'id="bind_password-state"><span class="badge">set</span>' in page.text
        assert 'name="bind_password_clear"' in page.text
        assert 'value="ldap://127.0.0.1:1"' in page.text
        assert "Mode: <strong>search</strong>" in page.text

        # The whole form sent back with the password input empty keeps the password.
        form = _form_values(page.text) | {"bind_password": "", "timeout": "3"}
        assert browser.post("/authentication/settings", form).status_code == 303
        stored = _auth_settings(web)
        assert (stored["bind_password"], stored["timeout"]) == ("(set)", "3")

        # An invalid value is shown next to its field, every input as typed (never the
        # password), and nothing is saved: not the valid changes sent with it either.
        bad = form | {"uri": "ldap://127.0.0.2:1", "timeout": "nan", "bind_password": OTHER_SECRET}
        refused = browser.post("/authentication/settings", bad)
        assert refused.status_code == 422
        assert "timeout must be a number of seconds" in _error_of(refused.text, "timeout")
        assert 'aria-invalid="true"' in refused.text
        assert 'value="nan"' in refused.text and 'value="ldap://127.0.0.2:1"' in refused.text
        assert _auth_settings(web) == stored
        refused = browser.post("/authentication/settings", {"bind_user": "cn=fixed"})
        assert refused.status_code == 422
        assert "must contain %" in _error_of(refused.text, "bind_user")
        refused = browser.post("/authentication/settings", {"uri": "http://example.test"})
        assert "is not an ldap:// or ldaps:// URI" in _error_of(refused.text, "uri")
        both = browser.post(
            "/authentication/settings",
            {"bind_password": OTHER_SECRET, "bind_password_clear": "yes"},
        )
        assert both.status_code == 422
        assert "not both" in _error_of(both.text, "bind_password")
        assert _auth_settings(web) == stored

        # "Clear the saved password" clears it.
        assert (
            browser.post("/authentication/settings", {"bind_password_clear": "yes"}).status_code
            == 303
        )
        assert _auth_settings(web)["bind_password"] == "(not set)"
        assert (
            'id="bind_password-state"><span class="badge">not set</span>'
            in browser.get("/authentication").text
        )
    finally:
        browser.close()
    browser.never_shown(tmp_path, SERVICE_SECRET, OTHER_SECRET)


# --- Authentication: Test Authentication against slapd ----------------------------------------


def _binds_as(server: SlapdServer, dn: str) -> int:
    return server.log_file.read_text(errors="replace").count(f'BIND dn="{dn}"')


@pytest.mark.slapd
def test_test_authentication_shows_each_step_and_never_sends_the_password_elsewhere(
    web: Server,
    tmp_path: Path,
    slapd_server: SlapdServer,
    slapd_factory: Callable[..., SlapdServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    directory = slapd_server
    alice_password = ALICE.password
    assert alice_password
    web.cli("users", "add", "username=alice", "auth=ldap")
    web.cli(
        "auth",
        "settings",
        f"uri={directory.uri}",
        f"ca_file={directory.ca_file}",
        f"bind_dn={directory.reader_dn}",
        f"search_base=ou=people,{directory.suffix}",
        "timeout=3",
        "--set-secret",
        "bind_password",
        stdin=f"{directory.reader_password}\n",
    )
    browser = Browser(web)
    try:
        page = browser.get("/authentication")
        assert "a failed test counts toward the lockout" in page.text
        assert 'hx-include="#auth-settings"' in page.text
        form = _form_values(page.text) | {"bind_password": ""}

        # The right password: every step, as `auth test` prints them.
        alice = {"test_username": "alice", "test_password": alice_password}
        passed = browser.post("/authentication/test", form | alice, htmx=True)
        assert passed.status_code == 200
        steps = _steps(passed.text)
        assert steps[0] == "user 'alice' found; authentication method: ldap"
        assert f"contacting {directory.uri} (security: starttls, timeout 3 s)" in steps
        assert f"found uid=alice,ou=people,{directory.suffix}" in steps
        assert steps[-1] == "result: accepted (accepted)"
        assert 'id="auth-test-outcome">accepted (accepted)' in passed.text
        # Only the result and, out of band, each field's error slot (empty) come back: the
        # inputs are never replaced, so the settings typed stay as typed.
        assert "<input" not in passed.text and "<select" not in passed.text
        assert passed.text.count('hx-swap-oob="true"') == len(AUTH_FIELDS) + 2

        # A wrong password: the directory refuses it, and the page says where it stopped.
        wrong = browser.post(
            "/authentication/test", form | alice | {"test_password": WRONG_PASSWORD}, htmx=True
        )
        steps = _steps(wrong.text)
        assert "the directory refused the password" in steps
        assert steps[-1] == "result: rejected (bad_password)"

        # Without htmx the test is a whole page, with the saved settings.
        whole = browser.post("/authentication/test", alice)
        assert whole.status_code == 200 and "<h1>Authentication</h1>" in whole.text
        assert _steps(whole.text)[-1] == "result: accepted (accepted)"

        # No username: said next to the field, and no attempt is made.
        empty = browser.post("/authentication/test", form | {"test_password": "x"}, htmx=True)
        assert "enter the username to test" in _error_of(empty.text, "test_username")

        log = _auth_log(web)
        assert [(a["username"], a["outcome"], a["reason"], a["origin"]) for a in log] == [
            ("alice", "accepted", "accepted", "test"),
            ("alice", "rejected", "bad_password", "test"),
            ("alice", "accepted", "accepted", "test"),
            ("admin", "accepted", "accepted", "web"),  # signing in
        ]

        # Unsaved settings that point at another server: the stored service password is
        # not sent there, and the steps say so.
        monkeypatch.setenv(LOGLEVEL_ENV, "stats")
        other = slapd_factory(entries=partial(directory_tree, users=len(KNOWN_USERS), contacts=0))
        moved = form | alice | {"uri": other.uri, "ca_file": str(other.ca_file)}
        refused = browser.post("/authentication/test", moved, htmx=True)
        steps = _steps(refused.text)
        assert steps[0] == "testing unsaved settings (changed: uri, ca_file)"
        assert steps[1].startswith("the saved bind_password is not used: uri, ca_file differ")
        assert not any(s.startswith("contacting") for s in steps)
        assert steps[-1] == "result: rejected (directory_unavailable)"
        assert _binds_as(other, other.reader_dn) == 0
        # With that server's password typed in the form, it is tested for real.
        given = browser.post(
            "/authentication/test", moved | {"bind_password": other.reader_password}, htmx=True
        )
        steps = _steps(given.text)
        assert steps[0] == "testing unsaved settings (changed: uri, ca_file, bind_password)"
        assert steps[-1] == "result: accepted (accepted)"
        assert _binds_as(other, other.reader_dn) >= 1

        # An invalid unsaved setting: shown next to its field (out of band), no attempt.
        invalid = browser.post("/authentication/test", form | alice | {"timeout": "0"}, htmx=True)
        assert invalid.status_code == 200  # htmx swaps only a 2xx answer
        slot = re.search(r'<div id="timeout-slot"[^>]*hx-swap-oob="true">(.*?)</div>', invalid.text)
        assert slot and "timeout must be at least 0.1" in slot[1]
        assert "not valid: see the field marked" in invalid.text
        assert len(_auth_log(web)) == 6

        # Nothing of the tests was saved.
        stored = _auth_settings(web)
        assert (stored["uri"], stored["bind_password"]) == (directory.uri, "(set)")
    finally:
        browser.close()
    browser.never_shown(
        tmp_path, directory.reader_password, other.reader_password, alice_password, WRONG_PASSWORD
    )


# --- Authentication: the log ------------------------------------------------------------------


def test_the_authentication_log_is_paged_and_filtered(web: Server) -> None:
    with web.client(web.admin_token) as api:
        for n in range(LOG_PAGE + 3):
            answer = api.post("/api/v1/auth/check", json={"username": f"ghost{n}", "password": "x"})
            assert answer.status_code == 200
    sign = Browser(web)  # one accepted sign-in, origin web
    try:
        first = sign.get("/authentication")
        assert f"{LOG_PAGE + 4} attempts" in first.text
        assert first.text.count('data-label="Username"') == LOG_PAGE
        assert "page 1 of 2" in first.text
        # Newest first: the sign-in, then the last check.
        rows = re.findall(r'<th scope="row" data-label="Username">([^<]*)</th>', first.text)
        assert rows[:2] == ["admin", f"ghost{LOG_PAGE + 2}"]
        older = re.search(r'<a href="([^"]*)">Older</a>', first.text)
        assert older
        second = sign.get(older[1].replace("&amp;", "&").split("#")[0])
        assert "page 2 of 2" in second.text
        rows = re.findall(r'<th scope="row" data-label="Username">([^<]*)</th>', second.text)
        assert rows == ["ghost3", "ghost2", "ghost1", "ghost0"]

        api_only = sign.get("/authentication", origin="api", outcome="rejected")
        assert f"{LOG_PAGE + 3} attempts" in api_only.text
        assert '<option value="api" selected>' in api_only.text
        assert '<option value="rejected" selected>' in api_only.text
        # The filters stay in the paging links.
        assert "origin=api&amp;page_no=2" in api_only.text
        web_only = sign.get("/authentication", origin="web")
        assert "1 attempt<" in web_only.text and 'data-label="Origin">web<' in web_only.text
        one = sign.get("/authentication", username=" GHOST7 ")
        assert "1 attempt<" in one.text and ">ghost7<" in one.text
        assert "0 attempts" in sign.get("/authentication", outcome="accepted", origin="api").text
        # A page number someone edited shows the first page, not an error.
        for odd in ("abc", "-1", "0", "9" * 40):
            assert "page 1 of 2" in sign.get("/authentication", page_no=odd).text, odd
        assert "page 2 of 2" in sign.get("/authentication", page_no="7").text
        # A filter the core refuses is said next to it.
        bad = sign.get("/authentication", outcome="maybe")
        assert bad.status_code == 200
        assert "outcome must be one of accepted, rejected, refused" in _error_of(
            bad.text, "log-outcome"
        )
    finally:
        sign.close()


# --- Settings: instance settings and API tokens -----------------------------------------------


def _config(server: Server) -> dict[str, str]:
    return dict(json.loads(server.cli("config", "--json").stdout))


def _tokens(server: Server) -> list[dict[str, Any]]:
    return list(json.loads(server.cli("token", "list", "--json").stdout))


def test_instance_settings_are_saved_or_refused_next_to_the_field(web: Server) -> None:
    browser = Browser(web)
    try:
        page = browser.get("/settings")
        assert page.status_code == 200
        for name in ("default_region", "outside_line_prefix", "timezone"):
            assert f'<label for="{name}">' in page.text and f'id="{name}-help"' in page.text
        assert 'id="default_region" name="default_region"' in page.text
        saved = browser.post(
            "/settings",
            {"default_region": "at", "outside_line_prefix": "0", "timezone": "Europe/Vienna"},
        )
        assert saved.status_code == 303 and saved.headers["location"] == "/settings?saved=1"
        good = {
            "default_region": "AT",
            "outside_line_prefix": "0",
            "timezone": "Europe/Vienna",
            "lookup_match": "exact",
            "lookup_suffix_digits": "8",
            "lookup_clients": "",
        }
        assert _config(web) == good
        assert "The instance settings are saved." in browser.get("/settings", saved="1").text

        refused = browser.post("/settings", {"default_region": "XX", "outside_line_prefix": "9"})
        assert refused.status_code == 422
        assert "is not a country code" in _error_of(refused.text, "default_region")
        assert 'value="XX"' in refused.text and 'value="9"' in refused.text
        refused = browser.post("/settings", {"default_region": "CH", "outside_line_prefix": "0a"})
        assert "must be digits" in _error_of(refused.text, "outside_line_prefix")
        refused = browser.post("/settings", {"timezone": "vienna"})
        assert "did you mean 'Europe/Vienna'" in _error_of(refused.text, "timezone")
        assert _config(web) == good

        # The caller-name lookup's settings, on the same form.
        for name in ("lookup_match", "lookup_suffix_digits", "lookup_clients"):
            assert f'<label for="{name}">' in page.text
        refused = browser.post("/settings", {"lookup_clients": "everyone"})
        assert "not an IP address" in _error_of(refused.text, "lookup_clients")
        refused = browser.post("/settings", {"lookup_match": "fuzzy"})
        assert "exact, suffix" in _error_of(refused.text, "lookup_match")
        assert _config(web) == good
        lookup = {
            "lookup_match": "suffix",
            "lookup_suffix_digits": "7",
            "lookup_clients": "10.0.0.0/8",
        }
        assert browser.post("/settings", lookup).status_code == 303
        assert _config(web) == {**good, **lookup}
    finally:
        browser.close()


def test_a_token_is_shown_once_works_and_stops_working_when_revoked(
    web: Server, tmp_path: Path
) -> None:
    browser = Browser(web)
    try:
        created = browser.post(
            "/settings/tokens", {"name": "wallboard", "role": "viewer", "expires": "30"}
        )
        assert created.status_code == 201
        token = re.search(
            r'<textarea id="new-token" readonly[^>]*>(pbxc_[^<]+)</textarea>', created.text
        )
        assert token
        secret = token[1]
        assert "it is shown only this once" in created.text
        assert created.text.count(secret) == 1
        listed = [t for t in _tokens(web) if t["name"] == "wallboard"]
        assert len(listed) == 1
        new = listed[0]
        assert (new["role"], new["owner"], new["active"]) == ("viewer", "admin", True)
        assert new["expires"] is not None

        settings = browser.get("/settings")
        assert secret not in settings.text
        assert new["prefix"] in settings.text and "wallboard" in settings.text
        assert secret[len(new["prefix"]) :] not in settings.text

        with web.client(secret) as api:
            me = api.get("/api/v1/me")
            assert me.status_code == 200
            assert me.json() == {"username": "admin", "role": "viewer", "token_id": new["id"]}
            row = re.search(
                rf'<tr id="token-{new["id"]}">(.*?)</tr>', browser.get("/settings").text, re.S
            )
            assert row and 'data-label="Last used">never<' not in row[1]

            confirm = browser.get(f"/settings/tokens/{new['id']}/revoke")
            assert confirm.status_code == 200
            assert "Revoke API token “wallboard”?" in confirm.text
            assert api.get("/api/v1/me").status_code == 200  # asking revokes nothing
            revoked = browser.post(f"/settings/tokens/{new['id']}/revoke", {})
            assert revoked.status_code == 303
            assert revoked.headers["location"] == f"/settings?revoked={new['id']}#tokens"
            assert api.get("/api/v1/me").status_code == 401
        after = next(t for t in _tokens(web) if t["id"] == new["id"])
        assert after["revoked"] is not None and after["active"] is False
        page = browser.get("/settings", revoked=str(new["id"]))
        assert f"API token {new['id']} is revoked" in page.text
        row = re.search(rf'<tr id="token-{new["id"]}">(.*?)</tr>', page.text, re.S)
        assert row and "revoked</span>" in row[1] and "/revoke" not in row[1]

        # Refusals are shown next to the field they name, the input kept, nothing made.
        count = len(_tokens(web))
        for data, field, words in [
            ({"name": " ", "role": "admin"}, "name", "needs a name"),
            ({"name": "x", "role": "admin", "expires": "soon"}, "expires", "whole number"),
            ({"name": "x", "role": "admin", "expires": "0"}, "expires", "from 1 to 3650"),
            ({"name": "x", "role": "root"}, "role", "role must be one of admin, viewer, lookup"),
            ({"name": "x", "role": "admin", "owner": "nobody"}, "owner", "no user 'nobody'"),
        ]:
            refused = browser.post("/settings/tokens", data)
            assert refused.status_code == 422, refused.text
            assert words in _error_of(refused.text, field), field
        assert 'value="nobody"' in refused.text
        add_user(web, "wally", VIEWER_PASSWORD, roles="viewer")
        refused = browser.post("/settings/tokens", {"name": "x", "role": "admin", "owner": "wally"})
        assert "does not hold the role 'admin'" in _error_of(refused.text, "role")
        assert len(_tokens(web)) == count
        assert browser.post("/settings/tokens/999/revoke", {}).status_code == 404

        # A phone token: for one user's desk phone, whatever roles they hold; the page
        # says where it goes.
        phone = browser.post(
            "/settings/tokens", {"name": "desk", "role": "phone", "owner": "wally"}
        )
        assert phone.status_code == 201
        assert "/directory/yealink.xml?token=" in phone.text
        assert "private phonebook of wally" in phone.text
        listed = next(t for t in _tokens(web) if t["name"] == "desk")
        assert (listed["role"], listed["owner"], listed["active"]) == ("phone", "wally", True)
    finally:
        browser.close()
    # The token was in one response only, the one that created it, and never logged.
    assert sum(secret in body for body in browser.seen) == 1
    assert secret not in (tmp_path / "serve.log").read_text()


# --- who may do what ------------------------------------------------------------------------


def test_a_viewer_sees_the_log_and_instance_settings_but_cannot_change_anything(
    web: Server,
) -> None:
    web.cli("auth", "settings", "uri=ldap://127.0.0.1:1", "bind_user=uid=%,dc=example,dc=test")
    web.cli("token", "create", "crm", "--role", "admin")
    add_user(web, "vera", VIEWER_PASSWORD, roles="viewer")
    before = (_auth_settings(web), _config(web), _tokens(web))
    viewer = Browser(web, "vera", VIEWER_PASSWORD)
    try:
        auth = viewer.get("/authentication")
        assert auth.status_code == 200
        # As in the API: the directory settings and the tokens are for admins only.
        assert "ldap://127.0.0.1:1" not in auth.text and "uid=%" not in auth.text
        assert "shown to administrators only" in auth.text
        assert "Authentication log" in auth.text and ">vera<" in auth.text
        assert "<button" not in auth.text.replace(
            '<button type="submit">Sign out</button>', ""
        ).replace('<button type="submit">Show</button>', "")
        assert 'id="auth-settings"' not in auth.text and "Test Authentication" not in auth.text
        settings = viewer.get("/settings")
        assert settings.status_code == 200 and ">crm " not in settings.text
        assert "API tokens are shown to administrators only" in settings.text
        assert "Default region" in settings.text
        assert "Create token" not in settings.text and "/revoke" not in settings.text
        assert 'action="/settings"' not in settings.text
        assert viewer.get("/settings/tokens/1/revoke").status_code == 403

        for path, data in [
            ("/authentication/settings", {"uri": "ldap://attacker.example.test"}),
            ("/authentication/test", {"test_username": "admin", "test_password": "guess"}),
            ("/settings", {"default_region": "US"}),
            ("/settings/tokens", {"name": "mine", "role": "viewer", "owner": "vera"}),
            ("/settings/tokens/1/revoke", {}),
        ]:
            refused = viewer.post(path, data)
            assert refused.status_code == 403, path
            assert "this needs the admin role" in refused.text
    finally:
        viewer.close()
    assert (_auth_settings(web), _config(web), _tokens(web)) == before
    assert [a["origin"] for a in _auth_log(web)] == ["web"]  # vera's sign-in, no test


def test_every_change_needs_the_csrf_token_and_our_origin(web: Server) -> None:
    before = (_auth_settings(web), _config(web), _tokens(web))
    browser = Browser(web)
    try:
        changes = [
            ("/authentication/settings", {"uri": "ldap://attacker.example.test"}),
            ("/authentication/test", {"test_username": "admin", "test_password": "guess"}),
            ("/settings", {"default_region": "US"}),
            ("/settings/tokens", {"name": "mine", "role": "admin"}),
            ("/settings/tokens/1/revoke", {}),
        ]
        for path, data in changes:
            assert browser.post(path, data, csrf=False).status_code == 403, path
            wrong = browser.post(path, data | {"csrf_token": "x" * 43}, csrf=False)
            assert wrong.status_code == 403, path
            foreign = browser.client.post(
                path,
                data={"csrf_token": browser.csrf, **data},
                headers={"Origin": "http://evil.example"},
            )
            assert foreign.status_code == 403, path
        for path in ("/authentication", "/settings"):
            assert browser.client.get(path).status_code == 200
    finally:
        browser.close()
    assert (_auth_settings(web), _config(web), _tokens(web)) == before
    assert [a["origin"] for a in _auth_log(web)] == ["web"]  # the sign-in, no test ran


def test_the_pages_lead_to_sign_in_and_hold_no_inline_script_or_style(web: Server) -> None:
    with httpx.Client(base_url=web.url, timeout=30) as anonymous:
        for path in ("/authentication", "/settings", "/settings/tokens/1/revoke"):
            answer = anonymous.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == f"/login?next={path}"
    browser = Browser(web)
    try:
        created = browser.post("/settings/tokens", {"name": "t", "role": "admin"})
        for answer in (
            browser.get("/authentication"),
            browser.get("/settings"),
            browser.get("/settings/tokens/1/revoke"),
            created,
        ):
            assert answer.headers["cache-control"] == "no-store"
            assert "<script>" not in answer.text and " style=" not in answer.text
            assert not re.search(r"<[a-z][^>]*\son[a-z]+=", answer.text)  # no inline handler
            for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", answer.text):
                if 'type="hidden"' in tag:
                    continue
                ident = re.search(r'id="([^"]+)"', tag)
                assert ident and f'for="{ident[1]}"' in answer.text, tag
    finally:
        browser.close()
