"""The Connector and profile pages over HTTP against a real `serve` (SQLite and
PostgreSQL): Add from a template, the tabs with Save (everything checked, nothing kept
while anything is wrong), the live values of Variables, Save and Simulate with its paged
plan, Export and Import profile, Delete, Force after a safety abort, the run filters,
secrets that never reach a page, and what a viewer may not do."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Server
from tests.helpers import PHONEBOOK_HEADER, phonebook_row, write_csv
from tests.web.conftest import VIEWER_PASSWORD, add_user, csrf_of, sign_in

SECRET = "Bind-Secret-9876"


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60)


def _csv(tmp_path: Path, rows: int = 5, name: str = "pb.csv") -> Path:
    data = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(rows)]
    return write_csv(tmp_path / name, PHONEBOOK_HEADER, data)


def _post(client: httpx.Client, server: Server, url: str, **data: str) -> httpx.Response:
    return client.post(
        url, data={"csrf_token": csrf_of(client), **data}, headers={"Origin": server.url}
    )


def _show(server: Server, name: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(server.cli("profile", "show", name, "--json").stdout)
    return result


def _records(server: Server) -> list[dict[str, object]]:
    with server.client(server.admin_token) as api:
        body = api.get("/api/v1/phonebook", params={"limit": 1000}).json()
    items: list[dict[str, object]] = body["items"]
    return items


def _wait(client: httpx.Client, location: str) -> str:
    """The run page once the run is over."""
    deadline = time.monotonic() + 60
    while True:
        report = client.get(f"{location}/report", headers={"HX-Request": "true"})
        assert report.status_code == 200
        if "hx-trigger" not in report.text or time.monotonic() > deadline:
            return client.get(location).text
        time.sleep(0.2)


def _error_of(html: str, field_id: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]*)</p>', html)
    assert match, html
    return match[1]


def test_add_shows_the_templates_by_target_and_creates_a_profile(
    web: Server, tmp_path: Path
) -> None:
    path = _csv(tmp_path)
    with _client(web) as client:
        sign_in(client)
        home = client.get("/")
        assert 'href="/profiles/new"' in home.text and ">Add<" in home.text
        overview = client.get("/profiles/new")
        assert overview.status_code == 200
        text = overview.text
        assert text.index(">Users<") < text.index(">Phonebook<") < text.index(">Speed dials<")
        assert 'href="/profiles/new/csv-phonebook">CSV Phonebook Sync</a>' in text
        assert 'href="/profiles/new/peer-phonebook"' in text
        form = client.get("/profiles/new/csv-phonebook")
        assert '<label for="f-path">Path to CSV File' in form.text
        assert "(required)" in form.text and 'id="f-delimiter"' in form.text
        assert "<select" in form.text  # choices as a select
        created = _post(
            client,
            web,
            "/profiles/new/csv-phonebook",
            name="office",
            s_path=str(path),
            s_delimiter=",",
            s_encoding="utf-8",
        )
        assert created.status_code == 200
        assert "The profile office was made." in created.text
        assert 'aria-current="page">Basic Data</a>' in created.text
    shown = _show(web, "office")
    assert shown["template"] == "csv-phonebook" and shown["settings"]["path"] == str(path)  # type: ignore[index]


def test_a_wrong_value_is_shown_next_to_its_field_and_nothing_is_made(
    web: Server, tmp_path: Path
) -> None:
    path = _csv(tmp_path)
    with _client(web) as client:
        sign_in(client)
        bad_name = _post(
            client, web, "/profiles/new/csv-phonebook", name="no spaces", s_path=str(path)
        )
        assert bad_name.status_code == 422
        assert "not a valid profile name" in _error_of(bad_name.text, "f-name")
        assert 'value="no spaces"' in bad_name.text and f'value="{path}"' in bad_name.text
        missing = _post(client, web, "/profiles/new/csv-phonebook", name="office", s_path="")
        assert "needs the setting" in _error_of(missing.text, "f-path")
    assert json.loads(web.cli("profile", "list", "--json").stdout) == []


def test_save_checks_every_field_and_keeps_nothing_while_one_is_wrong(
    web: Server, tmp_path: Path
) -> None:
    path = _csv(tmp_path)
    web.cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={path}")
    before = _show(web, "pb")
    with _client(web) as client:
        sign_in(client)
        page = client.get("/profiles/pb/mode")
        assert 'aria-current="page">Mode</a>' in page.text and 'value="mirror" checked' in page.text
        refused = _post(
            client, web, "/profiles/pb/mode", mode="update", s_max_delete="lots", s_key="phone"
        )
        assert refused.status_code == 422 and "Nothing was saved" in refused.text
        assert _error_of(refused.text, "f-max_delete")
        assert 'value="lots"' in refused.text  # the input is kept
        assert _show(web, "pb") == before
        variables = _post(
            client, web, "/profiles/pb/variables", v_notes="{{ oops", v_displayname=""
        )
        assert variables.status_code == 422
        assert _error_of(variables.text, "v-notes") and _error_of(variables.text, "v-displayname")
        assert 'value="{{ oops"' in variables.text
        prefilter = _post(client, web, "/profiles/pb/prefilter", prefilter="{% if")
        assert prefilter.status_code == 422 and _error_of(prefilter.text, "f-prefilter")
        assert _show(web, "pb") == before
        saved = _post(client, web, "/profiles/pb/mode", mode="update", s_max_delete="3")
        assert saved.status_code == 303 and saved.headers["location"] == "/profiles/pb/mode?saved=1"
        assert "Saved." in client.get(saved.headers["location"]).text
        ok = _post(client, web, "/profiles/pb/variables", v_notes="{{ organisation }} note")
        assert ok.status_code == 303
    after = _show(web, "pb")
    assert after["mode"] == "update" and after["settings"]["max_delete"] == "3"  # type: ignore[index]
    assert after["variables"]["notes"] == "{{ organisation }} note"  # type: ignore[index]


def test_secrets_never_reach_a_page_and_an_empty_input_keeps_them(web: Server) -> None:
    web.cli(
        "profile",
        "create",
        "dir",
        "-t",
        "ldap-phonebook",
        "--set",
        "uri=ldap://127.0.0.1:1",
        "--set",
        "base_dn=dc=example,dc=test",
        "--set-secret",
        "bind_password",
        stdin=f"{SECRET}\n",
    )
    with _client(web) as client:
        sign_in(client)
        seen = [client.get(f"/profiles/dir/{tab}").text for tab in ("basic", "mode", "runs")]
        seen.append(client.get("/profiles/dir/export").text)
        seen.append(client.get("/").text)
        basic = seen[0]
        assert 'name="s_bind_password" type="password" value=""' in basic
        assert '<span class="badge">set</span>' in basic
        kept = _post(client, web, "/profiles/dir/basic", s_bind_password="", s_filter="(uid=*)")
        assert kept.status_code == 303
        assert _show(web, "dir")["secrets_set"] == ["bind_password"]
        # A wrong value elsewhere: the new secret is neither kept nor echoed.
        refused = _post(
            client, web, "/profiles/dir/basic", s_bind_password="Other-Secret-1", s_scope="deep"
        )
        assert refused.status_code == 422 and "Other-Secret-1" not in refused.text
        seen.append(refused.text)
        cleared = _post(client, web, "/profiles/dir/basic", clear_bind_password="yes")
        assert cleared.status_code == 303
        assert _show(web, "dir")["secrets_set"] == []
    for html in seen:
        assert SECRET not in html


def test_evaluate_gives_the_values_of_unsaved_expressions(web: Server, tmp_path: Path) -> None:
    path = _csv(tmp_path, rows=8)
    web.cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={path}")
    before = _show(web, "pb")
    with _client(web) as client:
        sign_in(client)
        tab = client.get("/profiles/pb/variables")
        assert '<label for="v-displayname">displayname</label>' in tab.text
        assert 'hx-post="/profiles/pb/evaluate"' in tab.text
        assert "Entry 0" in tab.text and "<code>{{ phone }}</code>" in tab.text
        token = csrf_of(client)
        headers = {"Origin": web.url, "X-CSRF-Token": token, "HX-Request": "true"}
        fragment = client.post(
            "/profiles/pb/evaluate",
            data={
                "tab": "variables",
                "v_displayname": "{{ displayname | upper }}",
                "v_notes": "{{",
            },
            headers=headers,
        )
        assert fragment.status_code == 200
        values = re.search(
            r'id="values-displayname" hx-swap-oob="true">(.*?)</div>', fragment.text, re.S
        )
        assert values and "ENTRY 0" in values[1] and "ENTRY 4" in values[1]
        assert "ENTRY 5" not in values[1]  # the first five rows
        notes = re.search(r'id="values-notes" hx-swap-oob="true">(.*?)</div>', fragment.text, re.S)
        assert notes and "field-error" in notes[1]
        rows = client.post(
            "/profiles/pb/evaluate",
            data={"tab": "prefilter", "prefilter": 'displayname == "Entry 1"'},
            headers=headers,
        )
        assert rows.text.count("imported</span>") == 1 and rows.text.count("skipped</span>") == 4
        # Without scripts: the whole tab, with the input kept.
        plain = client.post(
            "/profiles/pb/evaluate",
            data={"csrf_token": token, "tab": "variables", "v_displayname": "X{{ phone }}"},
            headers={"Origin": web.url},
        )
        assert 'value="X{{ phone }}"' in plain.text and "X+49 991 1000" in plain.text
        # A CSRF-less evaluate is refused.
        assert client.post("/profiles/pb/evaluate", headers={"Origin": web.url}).status_code == 403
    assert _show(web, "pb") == before


def test_save_and_simulate_changes_no_record_and_shows_the_whole_plan_paged(
    web: Server, tmp_path: Path
) -> None:
    path = _csv(tmp_path, rows=60)
    web.cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={path}")
    web.cli("sync", "pb")
    rows = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(55)]
    rows[0] = phonebook_row("Entry 0", "+49 991 1000", organisation="Changed")
    rows += [phonebook_row(f"New {n}", f"+49 991 {5000 + n}") for n in range(3)]
    rows.append(phonebook_row("", "+49 991 9"))  # invalid: no name
    write_csv(path, PHONEBOOK_HEADER, rows)
    before = _records(web)
    with _client(web) as client:
        sign_in(client)
        started = _post(client, web, "/profiles/pb/mode", s_max_delete="50", then="simulate")
        assert started.status_code == 303
        location = started.headers["location"]
        page = _wait(client, location)
        assert "Simulation #" in page and "dry run: nothing changed" in page
        assert "Would create phonebook entry &#39;New 0&#39;" in page
        assert 'All changes <span class="count">9</span>' in page
        updates = client.get(f"{location}?show=update").text
        assert "Would update phonebook entry &#39;Entry 0&#39;" in updates
        assert (
            "<dt>organisation</dt><dd><del>(empty)</del>" in updates
            and "<ins>Changed</ins>" in updates
        )
        deletes = client.get(f"{location}?show=delete").text
        assert deletes.count("Would delete phonebook entry") == 5
        invalid = client.get(f"{location}?show=invalid").text
        assert "line 60" in invalid and "displayname" in invalid
        # Paged: 60 creates on the first run's page, 50 a page.
        first = json.loads(web.cli("runs", "--json").stdout)[-1]["id"]
        one = client.get(f"/runs/{first}?show=create").text
        assert one.count("Created phonebook entry") == 50 and "page 1 of 2" in one
        two = client.get(f"/runs/{first}?show=create&page_no=2").text
        assert two.count("Created phonebook entry") == 10 and "51–60 of 60 listed" in two
    assert _records(web) == before
    assert _show(web, "pb")["settings"]["max_delete"] == "50"  # type: ignore[index]


def test_a_mirror_run_stopped_by_max_delete_can_be_forced(web: Server, tmp_path: Path) -> None:
    path = _csv(tmp_path, rows=20)
    web.cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={path}")
    web.cli("sync", "pb")
    write_csv(path, PHONEBOOK_HEADER, [phonebook_row("Entry 0", "+49 991 1000")])
    with _client(web) as client:
        sign_in(client)
        started = _post(client, web, "/profiles/pb/runs")
        page = _wait(client, started.headers["location"])
        assert "status-aborted" in page and "safety rule <strong>max_delete" in page
        run_id = started.headers["location"].rsplit("/", 1)[1]
        assert f'href="/runs/{run_id}/force"' in page
        confirm = client.get(f"/runs/{run_id}/force")
        assert confirm.status_code == 200 and "delete 19" in confirm.text
        assert confirm.text.count("<li>Entry") == 19
        assert len(_records(web)) == 20
        forced = _post(client, web, f"/runs/{run_id}/force")
        assert forced.status_code == 303
        done = _wait(client, forced.headers["location"])
        assert "status-ok" in done and "Import, forced" in done
        # Forcing a run that was not aborted is refused.
        again = _post(client, web, "/runs/1/force")
        assert again.status_code == 422
    assert [r["displayname"] for r in _records(web)] == ["Entry 0"]


def test_runs_are_filtered_by_profile_and_status(web: Server, tmp_path: Path) -> None:
    path = _csv(tmp_path)
    web.cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={path}")
    web.cli("profile", "create", "other", "-t", "csv-phonebook", "--set", f"path={path}")
    web.cli("sync", "pb")
    web.cli("sync", "other", "--dry-run")
    path.unlink()
    web.cli("profile", "create", "gone", "-t", "csv-phonebook", "--set", f"path={path}")
    with _client(web) as client:
        sign_in(client)
        started = _post(client, web, "/profiles/gone/runs")
        assert "status-failed" in _wait(client, started.headers["location"])
        failed = client.get("/runs", params={"status": "failed"}).text
        assert "1 run<" in failed and '<option value="failed" selected>' in failed
        ok = client.get("/runs", params={"status": "ok", "profile": "pb"}).text
        assert "1 run<" in ok and ">pb</td>" in ok and ">other</td>" not in ok


def test_export_import_round_trip_and_delete(web: Server, tmp_path: Path) -> None:
    path = _csv(tmp_path)
    web.cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={path}")
    web.cli("profile", "prefilter", "pb", 'phone != ""')
    web.cli("sync", "pb")
    with _client(web) as client:
        sign_in(client)
        export = client.get("/profiles/pb/export")
        assert export.headers["content-disposition"] == 'attachment; filename="pb.json"'
        exported = export.json()
        assert exported["prefilter"] == 'phone != ""'
        upload = client.post(
            "/profiles/import",
            data={"csrf_token": csrf_of(client), "name": "copy"},
            files={"file": ("pb.json", export.content, "application/json")},
            headers={"Origin": web.url},
        )
        assert upload.status_code == 200 and "The profile copy was made." in upload.text
        pasted = _post(client, web, "/profiles/import", text=export.text, name="pasted")
        assert pasted.status_code == 200
        taken = _post(client, web, "/profiles/import", text=export.text)
        assert taken.status_code == 409 and "exists already" in _error_of(taken.text, "import-name")
        broken = _post(client, web, "/profiles/import", text="{not json")
        assert broken.status_code == 422 and "not a profile export" in broken.text
        assert "{not json" in broken.text  # the pasted text is kept
        confirm = client.get("/profiles/pb/delete")
        assert "Delete the profile pb?" in confirm.text and 'name="purge"' in confirm.text
        gone = _post(client, web, "/profiles/pb/delete", purge="yes")
        assert gone.status_code == 303 and gone.headers["location"] == "/?deleted=1&purged=5"
        assert "and the 5 records it had imported" in client.get(gone.headers["location"]).text
        kept = _post(client, web, "/profiles/copy/delete", purge="no")
        assert kept.headers["location"] == "/?deleted=1&purged=0"
    assert _show(web, "pasted")["prefilter"] == 'phone != ""'
    names = [p["name"] for p in json.loads(web.cli("profile", "list", "--json").stdout)]
    assert names == ["pasted"]
    assert _records(web) == []


def test_a_viewer_sees_every_tab_without_a_button_that_changes_anything(
    web: Server, tmp_path: Path
) -> None:
    path = _csv(tmp_path)
    web.cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={path}")
    web.cli("sync", "pb")
    add_user(web, "vera", VIEWER_PASSWORD, roles="viewer")
    before = _show(web, "pb")
    with _client(web) as client:
        sign_in(client, "vera", VIEWER_PASSWORD)
        pages = [client.get("/").text, client.get("/profiles/new").text]
        pages += [
            client.get(f"/profiles/pb/{tab}").text
            for tab in ("basic", "prefilter", "variables", "mode", "preview", "runs")
        ]
        pages.append(client.get("/profiles/pb/delete").text)
        for html in pages:
            for words in (
                "Save and Simulate",
                ">Save<",
                "Import Now",
                ">Add<",
                ">Delete</a>",
                "Delete pb</button>",
                "Import profile",
            ):
                assert words not in html, words
        assert "Entry 0" in pages[6]  # the preview
        token = csrf_of(client)
        own = {"Origin": web.url}
        for url, data in (
            ("/profiles/pb/mode", {"mode": "update"}),
            ("/profiles/pb/delete", {}),
            ("/profiles/import", {"text": client.get("/profiles/pb/export").text, "name": "x"}),
            ("/profiles/new/csv-phonebook", {"name": "x", "s_path": str(path)}),
        ):
            refused = client.post(url, data={"csrf_token": token, **data}, headers=own)
            assert refused.status_code == 403, url
        # Evaluating is a question, not a change: a viewer may ask it.
        asked = client.post(
            "/profiles/pb/evaluate",
            data={"tab": "variables", "v_displayname": "{{ phone }}"},
            headers={**own, "X-CSRF-Token": token, "HX-Request": "true"},
        )
        assert asked.status_code == 200 and "+49 991 1000" in asked.text
    assert _show(web, "pb") == before
    assert [p["name"] for p in json.loads(web.cli("profile", "list", "--json").stdout)] == ["pb"]


def test_without_the_csrf_token_nothing_changes(web: Server, tmp_path: Path) -> None:
    path = _csv(tmp_path)
    web.cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={path}")
    before = _show(web, "pb")
    with _client(web) as client:
        sign_in(client)
        own = {"Origin": web.url}
        for url, data in (
            ("/profiles/pb/mode", {"mode": "update"}),
            ("/profiles/pb/delete", {"purge": "yes"}),
            ("/profiles/new/csv-phonebook", {"name": "x", "s_path": str(path)}),
            ("/profiles/import", {"text": "{}"}),
        ):
            assert client.post(url, data=data, headers=own).status_code == 403, url
    assert _show(web, "pb") == before


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_preview_shows_rows_and_unreadable_lines(web: Server, tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("displayname,phone\nMax,+4999112345\nBroken,1,2,3\nEva,+4999154321\n")
    web.cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={path}")
    with _client(web) as client:
        sign_in(client)
        html = client.get("/profiles/pb/preview").text
        assert '<th scope="col">displayname</th>' in html and ">Max</td>" in html
        assert ">Eva</td>" in html and "line 3:" in html
        path.unlink()
        missing = client.get("/profiles/pb/preview")
        assert missing.status_code == 200 and 'class="field-error" role="alert"' in missing.text
