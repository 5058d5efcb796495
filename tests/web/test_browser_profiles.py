"""The Connector and profile pages in a real Chromium (Debian's `chromium`, never a
downloaded browser), as the seed's CSV walk-through goes: Add → the template overview →
a CSV phonebook profile → Variables with values that follow the typing → Save and
Simulate (a plan, no record written) → Import Now (progress, then the counts) → the
records are there. Then a mirror run stopped by max_delete and forced after the
confirmation, and a failed run that names the file and line. Every request goes to the
server itself; no console error. Screenshots of each step go to the test's tmp dir."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.conftest import Server
from tests.helpers import PHONEBOOK_HEADER, phonebook_row, write_csv
from tests.web.browser import chromium, playwright_api  # noqa: F401 - the fixture, shared
from tests.web.conftest import ADMIN_PASSWORD

pytestmark = pytest.mark.browser

#: Enough rows that Import Now is still running when its page opens.
ROWS = 20_000


def _phonebook(server: Server) -> int:
    with httpx.Client(base_url=server.url, timeout=30) as api:
        body = api.get(
            "/api/v1/phonebook",
            params={"limit": 1},
            headers={"Authorization": f"Bearer {server.admin_token}"},
        ).json()
    total: int = body["total"]
    return total


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("width", "height"), [(1280, 800), (390, 844)])
def test_the_csv_walk_through_simulate_import_force_and_a_failed_run(
    web: Server,
    chromium: playwright_api.Browser,  # noqa: F811 - the shared fixture
    tmp_path: Path,
    width: int,
    height: int,
) -> None:
    rows = [phonebook_row(f"Entry {n}", f"+49 991 {100000 + n}") for n in range(ROWS)]
    rows[3] = phonebook_row("", "+49 991 5")  # invalid: no name (line 5)
    path = write_csv(tmp_path / "phonebook.csv", PHONEBOOK_HEADER, rows)
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
    n = iter(range(1, 100))

    def shot(name: str) -> None:
        page.screenshot(path=shots / f"{next(n):02d}-{name}.png", full_page=True)

    try:
        page.goto(web.url + "/login")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Connector")).to_be_visible()
        shot("connector-empty")

        # Add → the template overview, grouped by target.
        page.get_by_role("link", name="Add", exact=True).click()
        expect(page.get_by_role("heading", name="Add a profile")).to_be_visible()
        expect(page.get_by_role("heading", name="Speed dials")).to_be_visible()
        shot("template-overview")
        page.get_by_role("link", name="CSV Phonebook Sync").click()

        # The form: name and the template's settings; a wrong value comes back.
        page.get_by_label("Name").fill("office")
        page.get_by_label("Path to CSV File").fill(str(tmp_path / "missing.csv"))
        page.get_by_label("Max delete").fill("many")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.locator("#f-max_delete-error")).to_be_visible()
        expect(page.get_by_label("Name")).to_have_value("office")
        shot("create-error")
        page.get_by_label("Path to CSV File").fill(str(path))
        page.get_by_label("Max delete").fill("10%")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_text("The profile office was made.")).to_be_visible()
        expect(page.get_by_role("link", name="Basic Data")).to_have_attribute(
            "aria-current", "page"
        )
        shot("profile-basic")

        # Variables: the values follow the typing; nothing is saved.
        page.get_by_role("navigation", name="Profile").get_by_role("link", name="Variables").click()
        values = page.locator("#values-displayname")
        expect(values).to_contain_text("Entry 0")
        expect(page.locator("#evaluation")).to_contain_text("{{ organisation }}")
        field = page.get_by_label("displayname", exact=True)
        field.fill("")
        field.press_sequentially("{{ displayname | upper }} ({{ phone }})", delay=5)
        expect(values).to_contain_text("ENTRY 0 (+49 991 100000)")
        shot("variables-typed")
        field.fill("{{ displayname }}")
        expect(values).to_contain_text("Entry 0")
        expect(values).not_to_contain_text("ENTRY")

        # Pre Filter: which of the first rows it lets through, as you type.
        page.get_by_role("navigation", name="Profile").get_by_role(
            "link", name="Pre Filter"
        ).click()
        page.get_by_role("textbox", name="Pre Filter").press_sequentially(
            'displayname != "Entry 1"', delay=5
        )
        expect(page.locator(".row-outcomes .outcome.skip")).to_have_count(1)
        expect(page.locator(".row-outcomes .outcome.ok")).to_have_count(4)
        shot("prefilter-typed")
        page.get_by_role("navigation", name="Profile").get_by_role("link", name="Variables").click()

        # Save and Simulate: the plan, and no record written.
        page.get_by_role("button", name="Save and Simulate").click()
        expect(page.get_by_role("heading", name="Simulation #1 of office")).to_be_visible()
        expect(page.locator("#report .status")).to_have_text("ok", timeout=60_000)
        expect(page.locator("#report .summary")).to_contain_text("would be created")
        expect(page.locator("#plan")).to_contain_text("Would create phonebook entry 'Entry 0'")
        expect(page.locator("#plan")).to_contain_text("counted but not listed")
        shot("simulation")
        page.get_by_role("link", name="Invalid rows and conflicts").click()
        expect(page.locator("#plan .changes")).to_contain_text("line 5")
        expect(page.locator("#plan .changes")).to_contain_text("displayname")
        shot("simulation-invalid")
        assert _phonebook(web) == 0

        # Import Now: a progress bar while it runs, then the counts.
        page.get_by_role("link", name="office").click()
        page.get_by_role("button", name="Import Now: office").click()
        expect(page.locator("#run-progress")).to_be_attached(timeout=10_000)
        shot("import-progress")
        expect(page.locator("#report .status")).to_have_text("ok", timeout=120_000)
        expect(page.locator("#run-progress")).to_have_count(0)
        expect(page.locator("#report .summary")).to_contain_text(f"{ROWS - 1} created")
        shot("import-done")
        assert _phonebook(web) == ROWS - 1

        # A mirror run that would delete too many is stopped, then forced.
        write_csv(
            path,
            PHONEBOOK_HEADER,
            [phonebook_row(f"Entry {n}", f"+49 991 {100000 + n}") for n in range(ROWS - 40)],
        )
        page.get_by_role("link", name="office").click()
        page.get_by_role("navigation", name="Profile").get_by_role("link", name="Mode").click()
        page.get_by_label("Max delete").fill("10")
        page.get_by_role("button", name="Save", exact=True).click()
        expect(page.get_by_text("Saved.")).to_be_visible()
        shot("mode-saved")
        page.get_by_role("button", name="Import Now: office").click()
        expect(page.locator("#report .status")).to_have_text("aborted", timeout=120_000)
        expect(page.locator(".safety")).to_contain_text("max_delete")
        shot("aborted")
        page.get_by_role("link", name="Force…").click()
        expect(page.get_by_role("heading", name="Force an import of office?")).to_be_visible()
        expect(page.locator("ul.deletes li")).to_have_count(40)
        expect(page.locator("ul.deletes")).to_contain_text(f"Entry {ROWS - 1}")
        shot("force-confirm")
        page.get_by_role("button", name="Force the import").click()
        expect(page.locator("#report .status")).to_have_text("ok", timeout=120_000)
        expect(page.locator("#report")).to_contain_text("Import, forced")
        expect(page.locator("#report .summary")).to_contain_text("40 deleted")
        shot("forced")
        assert _phonebook(web) == ROWS - 40

        # A run that fails names the file and the line.
        header = ",".join(PHONEBOOK_HEADER).encode()
        path.write_bytes(header + b"\nEntry 0,+4999112345,,,,,,,\nM\xfcller,+4999154321,,,,,,,\n")
        page.get_by_role("link", name="office").click()
        page.get_by_role("button", name="Import Now: office").click()
        expect(page.locator("#report .status")).to_have_text("failed", timeout=60_000)
        expect(page.locator("#report .errors")).to_contain_text("line 3")
        expect(page.locator("#report .errors")).to_contain_text(str(path))
        shot("failed")
        assert _phonebook(web) == ROWS - 40

        # The runs, filtered by status.
        nav = page.get_by_role("navigation", name="Main")
        nav.get_by_role("link", name="Runs", exact=True).click()
        page.get_by_label("Status").select_option("aborted")
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_text("1 run", exact=True)).to_be_visible()
        shot("runs-aborted")
    finally:
        context.close()
    own = urlsplit(web.url).netloc
    foreign = [url for url in requested if urlsplit(url).netloc != own]
    assert not foreign, foreign
    # No script, style or frame refused by the Content-Security-Policy, no JS error; the
    # one failed load is the create form sent with a wrong value (422).
    invalid_form = "the server responded with a status of 422"
    assert [p for p in problems if invalid_form not in p] == [], problems
