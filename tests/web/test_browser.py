"""The admin pages in a real Chromium (Debian's `chromium` package, never a downloaded
browser): sign in, the Connector page, Import Now, the Runs page, sign out. Every request
the pages make must go to the server itself. Screenshots of each step are saved in the
test's tmp dir."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import Server
from tests.helpers import PHONEBOOK_HEADER, phonebook_row, write_csv
from tests.web.browser import chromium, playwright_api  # noqa: F401 - the fixture, shared
from tests.web.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_sign_in_import_now_runs_and_sign_out(
    web: Server,
    chromium: playwright_api.Browser,  # noqa: F811 - the shared fixture
    tmp_path: Path,
    width: int,
    height: int,
) -> None:
    data = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(12)]
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, data)
    web.cli("profile", "create", "office", "-t", "csv-phonebook", "--set", f"path={path}")
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
        page.goto(web.url + "/")
        expect(page).to_have_url(web.url + "/login")
        page.screenshot(path=shots / "1-sign-in.png", full_page=True)

        # With the keyboard only: type, Tab, type, Enter.
        page.get_by_label("Username").fill("admin")
        page.keyboard.press("Tab")
        page.keyboard.type("wrong-password")
        page.keyboard.press("Enter")
        expect(page.locator("#password-error")).to_have_text("wrong username or password")
        page.screenshot(path=shots / "2-wrong-password.png", full_page=True)

        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(web.url + "/")
        expect(page.get_by_role("heading", name="Connector")).to_be_visible()
        row = page.get_by_role("row").filter(has_text="office")
        expect(row).to_contain_text("csv-phonebook")
        expect(row).to_contain_text("never run")
        page.screenshot(path=shots / "3-connector.png", full_page=True)

        page.get_by_role("button", name="Import Now: office").click()
        expect(page).to_have_url(f"{web.url}/runs/1")
        # htmx refreshes the report until the run is over.
        expect(page.locator("#report .status")).to_have_text("ok", timeout=30_000)
        expect(page.locator("#report .summary")).to_contain_text("12 created")
        expect(page.locator("#report .changes")).to_contain_text(
            "Created phonebook entry 'Entry 0'"
        )
        page.screenshot(path=shots / "4-run.png", full_page=True)

        nav = page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name="Runs", exact=True).click()
        expect(page.get_by_role("heading", name="Runs")).to_be_visible()
        expect(page.get_by_role("row").filter(has_text="#1")).to_contain_text("12 created")
        page.screenshot(path=shots / "5-runs.png", full_page=True)

        nav.get_by_role("link", name="Connector", exact=True).click()
        expect(page.get_by_role("row").filter(has_text="office")).to_contain_text("12 created")
        page.get_by_role("link", name="office", exact=True).click()
        expect(page.get_by_role("heading", name="Basic Data")).to_be_visible()
        page.screenshot(path=shots / "6-profile.png", full_page=True)

        page.get_by_role("button", name="Sign out").click()
        expect(page).to_have_url(web.url + "/login")
        page.goto(web.url + "/runs")
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
        page.screenshot(path=shots / "7-signed-out.png", full_page=True)
    finally:
        context.close()
    own = urlsplit(web.url).netloc
    foreign = [url for url in requested if urlsplit(url).netloc != own]
    assert not foreign, foreign
    assert any(url.endswith("/static/htmx.min.js?v=2.0.11") for url in requested)
    # No script, style or frame was refused by the Content-Security-Policy, no JS error;
    # the one failed load is the wrong password's 401.
    wrong_password = "the server responded with a status of 401"
    assert [p for p in problems if wrong_password not in p] == [], problems
