"""The records' pages in a real Chromium (Debian's `chromium`, never a downloaded browser),
at a desktop's and a phone's size: a user's Basic Data and password, and the phonebook
with its search as you type, add, edit and delete. Every request must go to the server
itself, and nothing may be refused by the Content-Security-Policy or fail in the page.
Screenshots of each step are saved in the test's tmp dir."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.api.conftest import Server
from tests.web.browser import chromium, playwright_api  # noqa: F401 - the fixture, shared
from tests.web.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.browser

SIZES = [(1280, 800), (390, 844)]
#: How long a list may take to follow what was typed: a wait, not a speed limit (on a
#: loaded 2-core machine a keystroke can lag past the 300 ms debounce and send a search
#: of its own before the last one).
FOLLOWS_MS = 20_000
SECRET = "Tr0ub4dor-and-3-more"


expect = playwright_api.expect


@contextmanager
def _signed_in_page(
    server: Server,
    browser: playwright_api.Browser,
    width: int,
    height: int,
    refused: list[int],
) -> Iterator[playwright_api.Page]:
    """A page signed in as admin; afterwards, every request it made went to the server
    and nothing failed in it but the forms it expected the core to refuse (`refused`:
    their HTTP statuses, which the browser reports on its console)."""
    requested: list[str] = []
    problems: list[str] = []
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.on("request", lambda r: requested.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(server.url + "/login")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Connector")).to_be_visible()
        yield page
    finally:
        context.close()
    own = urlsplit(server.url).netloc
    assert [url for url in requested if urlsplit(url).netloc != own] == []
    expected = [f"the server responded with a status of {status}" for status in refused]
    unexpected = [p for p in problems if not any(e in p for e in expected)]
    assert unexpected == [] and len(problems) == len(refused), problems


def _api_add(server: Server, target: str, record: dict[str, str]) -> None:
    with server.client(server.admin_token) as api:
        assert api.post(f"/api/v1/{target}", json=record).status_code == 201


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_edit_a_user_and_set_a_password(
    web: Server,
    chromium: playwright_api.Browser,  # noqa: F811 - the shared fixture
    tmp_path: Path,
    width: int,
    height: int,
) -> None:
    _api_add(web, "users", {"username": "jmueller", "displayname": "Jürgen Müller"})
    _api_add(web, "users", {"username": "zoe", "displayname": "Zoe Example"})
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with _signed_in_page(web, chromium, width, height, refused=[422]) as page:
        nav = page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name="Users", exact=True).click()
        expect(page.get_by_role("heading", name="Users", exact=True)).to_be_visible()
        expect(page.locator(".count")).to_have_text("3 users")
        page.screenshot(path=shots / "1-users.png", full_page=True)

        # Search as you type, with the keyboard: the list follows without a new page.
        page.evaluate("window.stillTheSamePage = true")
        page.get_by_label("Search").focus()
        page.keyboard.type("mül")
        expect(page.locator(".count")).to_have_text("1 user matching “mül”")
        expect(page).to_have_url(re.compile(r"/users\?search=m%C3%BCl$"))
        assert page.evaluate("window.stillTheSamePage") is True
        page.screenshot(path=shots / "2-search.png", full_page=True)

        page.get_by_role("link", name="jmueller", exact=True).click()
        expect(page.get_by_role("heading", name="jmueller")).to_be_visible()
        expect(page.locator(".record-origin")).to_have_text("by hand")
        page.get_by_label("Authentication").select_option("ldap")
        page.get_by_label("Roles").fill("sales")
        page.keyboard.press("Enter")  # the keyboard alone saves the form
        expect(page.locator(".notice")).to_have_text("Saved.")
        expect(page.get_by_label("Authentication")).to_have_value("ldap")
        page.screenshot(path=shots / "3-saved.png", full_page=True)

        page.get_by_label("New password").focus()
        page.keyboard.type(SECRET)
        page.keyboard.press("Enter")
        expect(page.locator(".notice")).to_have_text("The password was set.")
        expect(page.get_by_label("New password")).to_have_value("")
        assert SECRET not in page.content()
        expect(page.locator("dl.facts").filter(has_text="Password")).to_contain_text("set")
        page.screenshot(path=shots / "4-password-set.png", full_page=True)

        # A PIN that is not digits: the error is next to the field, which comes back empty.
        page.get_by_label("New PIN").fill("12ab")
        page.get_by_role("button", name="Set PIN").click()
        expect(page.locator("#new-pin-error")).to_have_text("must be 4 to 12 digits")
        expect(page.get_by_label("New PIN")).to_have_value("")
        assert "12ab" not in page.content()
        page.screenshot(path=shots / "5-pin-refused.png", full_page=True)

        nav.get_by_role("link", name="Users", exact=True).click()
        row = page.get_by_role("row").filter(has_text="jmueller")
        expect(row).to_contain_text("ldap")
        expect(row).to_contain_text("sales")
    with web.client(web.admin_token) as api:
        stored = api.get("/api/v1/users/jmueller").json()
    assert stored["auth"] == "ldap" and stored["password_set"] and not stored["pin_set"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("width", "height"), SIZES)
def test_phonebook_search_add_edit_and_delete(
    web: Server,
    chromium: playwright_api.Browser,  # noqa: F811 - the shared fixture
    tmp_path: Path,
    width: int,
    height: int,
) -> None:
    _api_add(web, "users", {"username": "eve"})
    _api_add(web, "phonebook", {"displayname": "Jürgen Müller", "phone": "+49 991 12345"})
    _api_add(web, "phonebook", {"displayname": "Pizza Roma", "phone": "0991 123456"})
    _api_add(web, "phonebook", {"displayname": "Eve's dentist", "owner": "eve"})
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with _signed_in_page(web, chromium, width, height, refused=[422]) as page:
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Phonebook").click()
        count = page.locator(".count")
        expect(count).to_have_text("2 phonebook entries in the global phonebook")
        page.evaluate("window.stillTheSamePage = true")
        page.get_by_label("Search").press_sequentially("MÜL", delay=40)
        expect(count).to_have_text(
            "1 phonebook entry in the global phonebook matching “MÜL”", timeout=FOLLOWS_MS
        )
        expect(page.get_by_role("row").filter(has_text="Jürgen Müller")).to_be_visible()
        page.get_by_label("Search").fill("")
        page.get_by_label("Search").press_sequentially("0991 123", delay=40)
        expect(count).to_contain_text("2 phonebook entries", timeout=FOLLOWS_MS)
        page.get_by_label("Search").fill("")
        page.get_by_label("Phonebook", exact=True).select_option("eve")
        expect(count).to_have_text("1 phonebook entry in the private phonebook of eve")
        assert page.evaluate("window.stillTheSamePage") is True
        page.screenshot(path=shots / "1-private.png", full_page=True)

        # Add to eve's private phonebook.
        page.get_by_role("link", name="Add phonebook entry").click()
        expect(page.get_by_label("Owner")).to_have_value("eve")
        page.get_by_label("Display name").fill("Dr. Weber")
        page.get_by_label("E-mail").fill("not-an-address")
        page.get_by_role("button", name="Add phonebook entry").click()
        expect(page.locator("#f-email-error")).to_contain_text("is not a valid e-mail address")
        expect(page.get_by_label("Display name")).to_have_value("Dr. Weber")
        page.screenshot(path=shots / "2-refused.png", full_page=True)
        page.get_by_label("E-mail").fill("weber@example.com")
        page.get_by_label("Phone", exact=True).fill("089 1234567")
        page.get_by_role("button", name="Add phonebook entry").click()
        expect(page.locator(".notice")).to_have_text("Added.")
        expect(page.get_by_role("heading", name="Dr. Weber")).to_be_visible()

        # Edit it.
        page.get_by_label("Organisation").fill("Praxis Weber")
        page.get_by_label("Notes").fill("Mondays closed\nsecond line")
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".notice")).to_have_text("Saved.")
        expect(page.get_by_label("Organisation")).to_have_value("Praxis Weber")
        page.screenshot(path=shots / "3-edited.png", full_page=True)

        # Delete it, after a confirmation; back in eve's phonebook.
        page.get_by_role("link", name="Delete phonebook entry").click()
        expect(
            page.get_by_role("heading", name="Delete phonebook entry Dr. Weber?")
        ).to_be_visible()
        page.screenshot(path=shots / "4-confirm.png", full_page=True)
        page.get_by_role("button", name="Delete phonebook entry").click()
        expect(page.locator(".notice")).to_have_text("Deleted.")
        expect(page).to_have_url(re.compile(r"/phonebook\?owner=eve&notice=deleted$"))
        expect(count).to_have_text("1 phonebook entry in the private phonebook of eve")
        page.screenshot(path=shots / "5-deleted.png", full_page=True)
    with web.client(web.admin_token) as api:
        entries = api.get("/api/v1/phonebook", params={"owner": "eve"}).json()["items"]
    assert [e["displayname"] for e in entries] == ["Eve's dentist"]
