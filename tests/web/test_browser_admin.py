"""The Authentication and Settings pages in a real Chromium (Debian's `chromium` package,
never a downloaded browser), against a real `serve` and a real slapd: sign in (a wrong
password first), Test Authentication with the right and a wrong password, an API token
created in the page, used over HTTP, and revoked in the page. Every request the pages
make must go to the server itself, with no console error. Screenshots of each step are
saved in the test's tmp dir."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.conftest import Server
from tests.servers.slapd import ALICE, SlapdServer
from tests.web.browser import chromium, playwright_api  # noqa: F401 - the fixture, shared
from tests.web.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.browser

WRONG_PASSWORD = "Wrong-guess-8812"


def _log(server: Server) -> list[dict[str, str]]:
    return list(json.loads(server.cli("auth", "log", "--json").stdout))


@pytest.mark.slapd
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_sign_in_test_authentication_and_an_api_token_from_creation_to_revocation(
    web: Server,
    chromium: playwright_api.Browser,  # noqa: F811 - the shared fixture
    slapd_server: SlapdServer,
    tmp_path: Path,
    width: int,
    height: int,
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
    shots = tmp_path / "screenshots"
    shots.mkdir()
    requested: list[str] = []
    problems: list[str] = []
    context = chromium.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.on("request", lambda r: requested.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    expect = playwright_api.expect
    try:
        # Sign in: a wrong password first, shown next to the field and audited.
        page.goto(web.url + "/authentication")
        expect(page).to_have_url(web.url + "/login?next=/authentication")
        page.get_by_label("Username").fill("admin")
        page.keyboard.press("Tab")
        page.keyboard.type(WRONG_PASSWORD)
        page.keyboard.press("Enter")
        expect(page.locator("#password-error")).to_have_text("wrong username or password")
        page.screenshot(path=shots / "1-wrong-password.png", full_page=True)
        last = _log(web)[0]
        assert (last["username"], last["outcome"], last["origin"]) == ("admin", "rejected", "web")
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.keyboard.press("Enter")
        expect(page).to_have_url(web.url + "/authentication")
        expect(page.get_by_role("heading", name="Authentication", exact=True)).to_be_visible()
        assert _log(web)[0]["outcome"] == "accepted"

        # The settings as saved, the password only as "set".
        expect(page.get_by_label("LDAP server URI(s)")).to_have_value(directory.uri)
        expect(page.locator("#bind_password-state")).to_contain_text("set")
        expect(page.get_by_label("Service account password")).to_have_value("")
        page.screenshot(path=shots / "2-authentication.png", full_page=True)

        # Test Authentication with the keyboard: username, Tab, password, Enter.
        test = page.locator("#auth-test")
        test.get_by_label("Username to test").fill("alice")
        page.keyboard.press("Tab")
        page.keyboard.type(alice_password)
        page.keyboard.press("Enter")
        outcome = page.locator("#auth-test-outcome")
        expect(outcome).to_have_text("accepted (accepted)", timeout=20_000)
        steps = page.locator("#auth-test-steps")
        expect(steps).to_contain_text(f"found uid=alice,ou=people,{directory.suffix}")
        expect(steps).to_contain_text("result: accepted (accepted)")
        # The form stays as typed (htmx swaps only the result), focus where it was.
        expect(page.get_by_label("Username to test")).to_have_value("alice")
        expect(page.locator("#test_password")).to_be_focused()
        page.locator("#auth-test").screenshot(path=shots / "3-test-accepted.png")

        page.locator("#test_password").fill(WRONG_PASSWORD)
        page.get_by_role("button", name="Test Authentication").click()
        expect(outcome).to_have_text("rejected (bad_password)", timeout=20_000)
        expect(steps).to_contain_text("the directory refused the password")
        page.screenshot(path=shots / "4-test-rejected.png", full_page=True)
        tests = [a["outcome"] for a in _log(web) if a["origin"] == "test"]
        assert tests == ["rejected", "accepted"]
        # The log on the page, filtered to the tests.
        page.get_by_label("Origin").select_option("test")
        page.get_by_role("button", name="Show").click()
        expect(page.locator("#log-total")).to_have_text("2 attempts")
        page.screenshot(path=shots / "5-log.png", full_page=True)

        # An API token made in the page works over HTTP until it is revoked in the page.
        nav = page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name="Settings", exact=True).click()
        expect(page.get_by_role("heading", name="Settings", exact=True)).to_be_visible()
        page.get_by_label("Token name").fill("crm lookup")
        page.get_by_label("Role").select_option("viewer")
        page.get_by_label("Expires after (days)").fill("7")
        page.get_by_role("button", name="Create token").click()
        expect(page.get_by_role("heading", name="API token created")).to_be_visible()
        expect(page.get_by_role("alert")).to_contain_text("shown only this once")
        token = page.get_by_label("Token “crm lookup”").input_value()
        assert token.startswith("pbxc_")
        page.screenshot(path=shots / "6-token-created.png", full_page=True)
        with httpx.Client(base_url=web.url, timeout=30) as api:
            bearer = {"Authorization": f"Bearer {token}"}
            me = api.get("/api/v1/me", headers=bearer)
            assert me.status_code == 200 and me.json()["role"] == "viewer"

            page.get_by_role("link", name="Back to the API tokens").click()
            row = page.get_by_role("row").filter(has_text="crm lookup")
            expect(row).to_contain_text("viewer")
            expect(row).not_to_contain_text(token)
            page.screenshot(path=shots / "7-tokens.png", full_page=True)
            row.get_by_role("link", name="Revoke crm lookup").click()
            expect(
                page.get_by_role("heading", name="Revoke API token “crm lookup”?")
            ).to_be_visible()
            page.screenshot(path=shots / "8-revoke.png", full_page=True)
            page.get_by_role("button", name="Revoke token").click()
            expect(page.get_by_role("status")).to_contain_text("is revoked")
            expect(page.get_by_role("row").filter(has_text="crm lookup")).to_contain_text("revoked")
            page.screenshot(path=shots / "9-revoked.png", full_page=True)
            assert api.get("/api/v1/me", headers=bearer).status_code == 401
    finally:
        context.close()
    own = urlsplit(web.url).netloc
    foreign = [url for url in requested if urlsplit(url).netloc != own]
    assert not foreign, foreign
    # No script, style or frame was refused by the Content-Security-Policy, no JS error;
    # the one failed load is the wrong password's 401.
    wrong_password = "the server responded with a status of 401"
    assert [p for p in problems if wrong_password not in p] == [], problems
