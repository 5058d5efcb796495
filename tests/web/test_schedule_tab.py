"""The Schedule tab and the Next run column over HTTP against a real `serve`: a schedule
typed and saved (the store holds it, the page lists its next runs), a wrong one shown
beside its field with nothing saved, Remove schedule, the next runs following the typing,
the zone a schedule is in and where it comes from, a profile whose scheduled runs keep
failing, skipped runs shown as such, and the Mode tab without the schedule's settings."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine

from pbx_connector.service import App
from pbx_connector.store import runs as run_store
from tests.api.conftest import Server
from tests.helpers import PHONEBOOK_HEADER, phonebook_row, write_csv
from tests.web.conftest import VIEWER_PASSWORD, add_user, csrf_of, sign_in

#: Each test starts its own server: one on PostgreSQL too is enough for these pages.
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60)


def _profile(server: Server, tmp_path: Path, name: str = "pb") -> Path:
    rows = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(3)]
    path = write_csv(tmp_path / f"{name}.csv", PHONEBOOK_HEADER, rows)
    server.cli("profile", "create", name, "-t", "csv-phonebook", "--set", f"path={path}")
    return path


def _post(client: httpx.Client, server: Server, url: str, **data: str) -> httpx.Response:
    return client.post(
        url, data={"csrf_token": csrf_of(client), **data}, headers={"Origin": server.url}
    )


def _live(client: httpx.Client, server: Server, name: str, **data: str) -> httpx.Response:
    """What htmx sends while the schedule is typed."""
    headers = {"Origin": server.url, "X-CSRF-Token": csrf_of(client), "HX-Request": "true"}
    return client.post(f"/profiles/{name}/schedule/preview", data=data, headers=headers)


def _show(server: Server, name: str) -> dict[str, object]:
    shown: dict[str, object] = json.loads(server.cli("profile", "show", name, "--json").stdout)
    return shown


def _schedule(server: Server, name: str) -> dict[str, object] | None:
    schedule: dict[str, object] | None = _show(server, name).get("schedule")  # type: ignore[assignment]
    return schedule


def _next_runs(page: str) -> list[str]:
    """The instants the next-runs list shows."""
    listed = re.search(r'<ol class="next-runs">(.*?)</ol>', page, re.S)
    return re.findall(r'<time datetime="([^"]+)">', listed[1]) if listed else []


def _field_error(page: str, field: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="f-{field}-error">([^<]*)</p>', page)
    return html.unescape(match[1]) if match else None


def _slot(fragment: str, field: str) -> str:
    """An out-of-band error place of the live fragment (always sent, empty when fine)."""
    match = re.search(
        rf'<div class="error-slot" id="f-{field}-slot" hx-swap-oob="true">(.*?)</div>',
        fragment,
        re.S,
    )
    assert match, fragment
    return match[1]


def _row(page: str, name: str) -> str:
    match = re.search(
        rf'<tr>\s*<th scope="row" data-label="Name"><a href="/profiles/{name}">.*?</tr>', page, re.S
    )
    assert match, page
    return match[0]


def test_a_schedule_saved_in_the_tab_is_kept_and_its_next_runs_are_shown(
    web: Server, tmp_path: Path
) -> None:
    _profile(web, tmp_path)
    with _client(web) as client:
        sign_in(client)
        tab = client.get("/profiles/pb/schedule")
        assert tab.status_code == 200 and 'aria-current="page">Schedule</a>' in tab.text
        nav = tab.text
        assert nav.index(">Mode</a>") < nav.index(">Schedule</a>") < nav.index(">Preview</a>")
        assert "No schedule: the profile runs only when it is started" in tab.text
        for preset in ("every N minutes", "every N hours", "hourly", "daily HH:MM"):
            assert f"<code>{preset}</code>" in tab.text
        assert (
            "<code>weekdays HH:MM</code>" in tab.text
            and "<code>weekly DAY HH:MM</code>" in tab.text
        )
        assert "a cron expression" in tab.text and "<code>off</code>" in tab.text
        assert "Remove schedule" not in tab.text  # nothing to remove yet
        saved = _post(
            client,
            web,
            "/profiles/pb/schedule",
            schedule="Daily 02:30",
            schedule_timezone="Europe/Berlin",
        )
        assert saved.status_code == 303
        assert saved.headers["location"] == "/profiles/pb/schedule?saved=1"
        page = client.get(saved.headers["location"]).text
    shown = _show(web, "pb")
    assert shown["settings"]["schedule"] == "daily 02:30"  # type: ignore[index]
    assert shown["settings"]["schedule_timezone"] == "Europe/Berlin"  # type: ignore[index]
    stored = _schedule(web, "pb")
    assert stored is not None and stored["timezone_from"] == "profile"
    assert "Saved." in page and 'value="daily 02:30"' in page and 'value="Europe/Berlin"' in page
    runs = _next_runs(page)
    assert runs == stored["next_runs"] and len(runs) == 5
    assert all(re.search(r"T02:30:00\+0[12]:00$", r) for r in runs)
    assert "Times in <strong>Europe/Berlin</strong>" in page
    assert "the profile&#39;s own time zone" in page
    assert "Remove schedule" in page
    # The profile's facts name the next run on every tab.
    assert f'<dd class="next-run"><time datetime="{runs[0]}">' in page.replace("\n", "")


@sqlite_only
def test_a_wrong_schedule_is_shown_beside_its_field_and_nothing_is_saved(
    web: Server, tmp_path: Path
) -> None:
    _profile(web, tmp_path)
    web.cli("profile", "schedule", "pb", "hourly", "--timezone", "UTC")
    before = _show(web, "pb")
    with _client(web) as client:
        sign_in(client)
        refused = _post(
            client, web, "/profiles/pb/schedule", schedule="every 7 minutes", schedule_timezone=""
        )
        assert refused.status_code == 422 and "Nothing was saved" in refused.text
        error = _field_error(refused.text, "schedule")
        assert error and "every 7 minutes" in error and "does not divide an hour" in error
        assert _field_error(refused.text, "schedule_timezone") is None
        assert 'value="every 7 minutes"' in refused.text  # what was typed stays
        assert 'id="f-schedule" name="schedule"' in refused.text
        assert 'aria-invalid="true"' in refused.text
        wrong_zone = _post(
            client,
            web,
            "/profiles/pb/schedule",
            schedule="daily 03:00",
            schedule_timezone="Berlin/Mitte",
        )
        assert wrong_zone.status_code == 422
        zone_error = _field_error(wrong_zone.text, "schedule_timezone")
        assert zone_error and "Berlin/Mitte" in zone_error and "time zone" in zone_error
        assert _field_error(wrong_zone.text, "schedule") is None
        assert 'value="Berlin/Mitte"' in wrong_zone.text
    assert _show(web, "pb") == before


@sqlite_only
def test_remove_schedule_leaves_the_profile_to_run_only_when_started(
    web: Server, tmp_path: Path
) -> None:
    _profile(web, tmp_path)
    web.cli("profile", "schedule", "pb", "every 15 minutes")
    assert _schedule(web, "pb") is not None
    with _client(web) as client:
        sign_in(client)
        home = client.get("/").text
        assert "<time datetime=" in _row(home, "pb")
        removed = _post(client, web, "/profiles/pb/schedule/remove")
        assert removed.status_code == 303
        page = client.get(removed.headers["location"]).text
        assert "The schedule was removed" in page
        assert "No schedule: the profile runs only when it is started" in page
        assert "Remove schedule" not in page and _next_runs(page) == []
        row = _row(client.get("/").text, "pb")
        assert "<time" not in row and "—" in row and "no schedule" in row
    assert _schedule(web, "pb") is None
    assert _show(web, "pb")["settings"].get("schedule", "") == ""  # type: ignore[attr-defined]


@sqlite_only
def test_the_next_runs_follow_the_typing_and_nothing_is_saved(web: Server, tmp_path: Path) -> None:
    _profile(web, tmp_path)
    before = _show(web, "pb")
    with _client(web) as client:
        sign_in(client)
        tab = client.get("/profiles/pb/schedule").text
        assert (
            'hx-post="/profiles/pb/schedule/preview"' in tab and 'hx-target="#schedule-next"' in tab
        )
        weekly = _live(client, web, "pb", schedule="weekly sun 03:00", schedule_timezone="UTC")
        assert weekly.status_code == 200
        runs = _next_runs(weekly.text)
        assert len(runs) == 5
        for run in runs:
            moment = datetime.fromisoformat(run)
            assert (moment.weekday(), moment.hour, moment.minute) == (6, 3, 0)
            assert moment.utcoffset() == timedelta(0)
        assert 'id="schedule-next"' in weekly.text and "<code>0 3 * * sun</code>" in weekly.text
        assert "field-error" not in _slot(weekly.text, "schedule")
        assert "field-error" not in _slot(weekly.text, "schedule_timezone")
        wrong = _live(client, web, "pb", schedule="weekly funday 03:00", schedule_timezone="")
        assert "funday" in _slot(wrong.text, "schedule") and "day of the week" in wrong.text
        assert "field-error" not in _slot(wrong.text, "schedule_timezone")
        assert _next_runs(wrong.text) == []
        zone = _live(client, web, "pb", schedule="hourly", schedule_timezone="Mars/Base")
        assert "Mars/Base" in _slot(zone.text, "schedule_timezone")
        assert "field-error" not in _slot(zone.text, "schedule")
        off = _live(client, web, "pb", schedule="off", schedule_timezone="")
        assert "No schedule" in off.text and _next_runs(off.text) == []
        # An empty zone follows the instance's.
        web.cli("config", "timezone=Asia/Tokyo")
        follows = _live(client, web, "pb", schedule="daily 06:00", schedule_timezone="")
        assert "Times in <strong>Asia/Tokyo</strong>" in follows.text
        assert "the instance&#39;s time zone" in follows.text
        assert all(r.endswith("T06:00:00+09:00") for r in _next_runs(follows.text))
        # Without scripts, Show next runs gives the whole tab with the input kept.
        plain = _post(
            client,
            web,
            "/profiles/pb/schedule/preview",
            schedule="every 2 hours",
            schedule_timezone="UTC",
        )
        assert plain.status_code == 200 and 'value="every 2 hours"' in plain.text
        assert len(_next_runs(plain.text)) == 5 and "<title>Schedule · pb" in plain.text
    assert _show(web, "pb") == before


@sqlite_only
def test_the_connector_lists_the_next_run_and_flags_a_failing_schedule(
    web: Server, tmp_path: Path
) -> None:
    path = _profile(web, tmp_path, "pb")
    _profile(web, tmp_path, "manual")
    web.cli("profile", "schedule", "pb", "hourly", "--timezone", "UTC")
    with _client(web) as client:
        sign_in(client)
        home = client.get("/").text
        assert '<th scope="col">Next run</th>' in home
        upcoming = _schedule(web, "pb")["next_runs"][0]  # type: ignore[index]
        row = _row(home, "pb")
        assert f'<time datetime="{upcoming}">' in row and "failing" not in row
        manual = _row(home, "manual")
        assert "—" in manual and "no schedule" in manual and "<time" not in manual
        # Three scheduled runs in a row fail (the file is gone).
        path.unlink()
        app = App(create_engine(web.db))
        for hours in (1, 2, 3):
            later = datetime.now(UTC) + timedelta(hours=hours)
            for claimed in app.schedules.claim_due(later):
                app.runs.execute(claimed.run_id)
        stored = _schedule(web, "pb")
        assert stored is not None and stored["failing"] is True
        row = _row(client.get("/").text, "pb")
        assert ">failing</a>" in row and 'href="/profiles/pb/schedule"' in row
        assert "failing" not in _row(client.get("/").text, "manual")
        tab = client.get("/profiles/pb/schedule").text
        warning = re.search(
            r'<div class="safety schedule-failing" role="alert">(.*?)</div>', tab, re.S
        )
        assert warning, tab
        assert f"the last {stored['failures']} scheduled runs of pb failed" in warning[1]
        assert 'href="/profiles/pb/runs"' in warning[1]
        runs = client.get("/profiles/pb/runs").text
        assert runs.count('<span class="status status-failed">failed</span>') >= 3
        assert "schedule" in runs


@sqlite_only
def test_a_skipped_slot_is_shown_as_skipped_not_as_an_error(web: Server, tmp_path: Path) -> None:
    _profile(web, tmp_path)
    web.cli("profile", "schedule", "pb", "hourly", "--timezone", "UTC")
    app = App(create_engine(web.db))
    profile_id = app.profiles.get("pb").id
    run_store.begin_run(app.engine, profile_id, "pb", dry_run=False, trigger="cli")
    (claimed,) = app.schedules.claim_due(datetime.now(UTC) + timedelta(hours=2))
    assert claimed.status == "skipped"
    with _client(web) as client:
        sign_in(client)
        for url in ("/runs", "/profiles/pb/runs"):
            listing = client.get(url).text
            run_link = f'<a href="/runs/{claimed.run_id}">'
            row = re.search(
                rf'<tr>\s*<th scope="row" data-label="Run">{run_link}.*?</tr>', listing, re.S
            )
            assert row, listing
            assert '<span class="status status-skipped">skipped</span>' in row[0]
            assert "already running" in row[0] and "would be created" not in row[0]
        page = client.get(f"/runs/{claimed.run_id}").text
        assert '<span class="status status-skipped">skipped</span>' in page
        assert "Scheduled for" in page and claimed.slot.isoformat(timespec="seconds") in page
        assert "was skipped: nothing was read and nothing was written" in page
        assert 'role="alert"' not in page
        home = _row(client.get("/").text, "pb")
        assert "status-skipped" in home and "status-failed" not in home
    css = httpx.get(f"{web.url}/static/web.css").text
    skipped = re.search(r"\.status-skipped \{([^}]*)\}", css)
    assert skipped and "--bad" not in skipped[1]


@sqlite_only
def test_the_mode_tab_no_longer_lists_the_schedule_settings(web: Server, tmp_path: Path) -> None:
    _profile(web, tmp_path)
    web.cli("profile", "schedule", "pb", "daily 04:00", "--timezone", "UTC")
    with _client(web) as client:
        sign_in(client)
        mode = client.get("/profiles/pb/mode").text
        assert 'name="s_max_delete"' in mode
        assert 'name="s_schedule"' not in mode and 'name="s_schedule_timezone"' not in mode
        assert 'href="/profiles/pb/schedule"' in mode
        # A schedule posted to the Mode tab is not taken from it; Save keeps the schedule.
        saved = _post(
            client, web, "/profiles/pb/mode", mode="update", s_max_delete="7", s_schedule="off"
        )
        assert saved.status_code == 303
    shown = _show(web, "pb")
    assert shown["settings"]["max_delete"] == "7"  # type: ignore[index]
    assert shown["settings"]["schedule"] == "daily 04:00"  # type: ignore[index]


@sqlite_only
def test_a_viewer_sees_the_schedule_and_cannot_change_it(web: Server, tmp_path: Path) -> None:
    _profile(web, tmp_path)
    web.cli("profile", "schedule", "pb", "weekdays 06:00", "--timezone", "UTC")
    add_user(web, "vera", VIEWER_PASSWORD, roles="viewer")
    before = _show(web, "pb")
    with _client(web) as client:
        sign_in(client, "vera", VIEWER_PASSWORD)
        tab = client.get("/profiles/pb/schedule").text
        assert 'value="weekdays 06:00"' in tab and len(_next_runs(tab)) == 5
        assert ">Save<" not in tab and "Remove schedule" not in tab
        for url, data in (
            ("/profiles/pb/schedule", {"schedule": "hourly"}),
            ("/profiles/pb/schedule/remove", {}),
        ):
            assert _post(client, web, url, **data).status_code == 403, url
    assert _show(web, "pb") == before
