"""Upload file on a file profile's Basic Data tab, and the Phonebook page's owner
selector, over HTTP against a real `serve` (SQLite and PostgreSQL): an upload the profile
then reads and imports, uploads the core refuses (shown beside the file field, the
previous file kept), what a viewer sees and may not do, and a private phonebook started
for a user who has none yet."""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import openpyxl

from pbx_connector.web.routing import MAX_FILE, MAX_FORM
from tests.api.conftest import Server
from tests.helpers import PHONEBOOK_HEADER, phonebook_row, write_csv
from tests.web.conftest import VIEWER_PASSWORD, add_user, csrf_of, sign_in

FIELD = "f-upload-file"


def _csv(*names: str, header: list[str] | None = None) -> bytes:
    head = header if header is not None else PHONEBOOK_HEADER
    rows = [",".join(head)]
    for n, name in enumerate(names):
        row = phonebook_row(name, f"+49 991 {2000 + n}")
        values = dict(zip(PHONEBOOK_HEADER, row, strict=True))
        rows.append(",".join(values.get(h, "") for h in head))
    return ("\n".join(rows) + "\n").encode()


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60)


def _upload(
    client: httpx.Client, server: Server, content: bytes, filename: str, profile: str = "pb"
) -> httpx.Response:
    """Upload file, as the form on the Basic Data tab sends it."""
    return client.post(
        f"/profiles/{profile}/upload",
        data={"csrf_token": csrf_of(client)},
        files={"file": (filename, content, "application/octet-stream")},
        headers={"Origin": server.url},
    )


def _shown(html: str) -> dict[str, str]:
    """The uploaded file's details as the tab shows them; {} when none is shown."""
    details = {}
    for what in ("name", "size", "sha256", "time", "format"):
        match = re.search(rf'<dd class="upload-{what}">(.*?)</dd>', html)
        if match:
            details[what] = unescape(re.sub(r"<[^>]+>", "", match[1]))
    return details


def _words(html: str) -> str:
    """A page's text as one reads it: without tags, spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _field_error(html: str) -> str:
    match = re.search(rf'<p class="field-error" id="{FIELD}-error"[^>]*>([^<]*)</p>', html)
    assert match, html
    return unescape(match[1])


def _kept(server: Server, name: str = "pb") -> dict[str, Any] | None:
    """What the core says was uploaded last (`profile upload NAME --json`)."""
    result: dict[str, Any] | None = json.loads(
        server.cli("profile", "upload", name, "--json").stdout
    )
    return result


def _settings(server: Server, name: str = "pb") -> dict[str, str]:
    shown = json.loads(server.cli("profile", "show", name, "--json").stdout)
    settings: dict[str, str] = shown["settings"]
    return settings


def _phonebook(server: Server) -> list[str]:
    with server.client(server.admin_token) as api:
        body = api.get("/api/v1/phonebook", params={"limit": 1000}).json()
    return sorted(str(item["displayname"]) for item in body["items"])


def _run_over(server: Server, run_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    with server.client(server.admin_token) as api:
        while True:
            report: dict[str, Any] = api.get(f"/api/v1/runs/{run_id}").json()
            if report["status"] not in ("queued", "running") or time.monotonic() > deadline:
                return report
            time.sleep(0.1)


def _file_profile(server: Server, name: str = "pb") -> None:
    server.cli("profile", "create", name, "--template", "csv-phonebook", "--set", "upload=yes")


# --- Upload file ----------------------------------------------------------------------------


def test_an_uploaded_csv_is_shown_and_imported_by_import_now(web: Server) -> None:
    _file_profile(web)
    content = _csv("Max Muster", "Eva Example")
    with _client(web) as client:
        sign_in(client)
        before = client.get("/profiles/pb/basic")
        assert before.status_code == 200
        assert "No file uploaded yet." in before.text and _shown(before.text) == {}
        assert 'enctype="multipart/form-data"' in before.text
        assert f'id="{FIELD}" name="file" type="file"' in before.text
        help_text = _words(before.text)
        assert "sets the profile to read the uploaded file ( upload=yes )" in help_text
        # How a file is read follows the core's own table of extensions.
        assert ".xlsx, .xlsm as xlsx; .csv, .txt as CSV; another extension keeps" in help_text

        done = _upload(client, web, content, "Phonebook 2026.csv")
        assert done.status_code == 200, done.text
        text = unescape(done.text)
        assert "Uploaded 'Phonebook 2026.csv': the profile reads it from now on." in text
        sha256 = hashlib.sha256(content).hexdigest()
        shown = _shown(done.text)
        assert shown["name"] == "Phonebook 2026.csv"
        assert shown["size"] == f"{len(content):,} bytes" and shown["sha256"] == sha256
        assert shown["format"] == "csv" and shown["time"]
        assert "No file uploaded yet." not in text
        # The profile reads it now, and the page shows what the core keeps.
        settings = _settings(web)
        assert settings["upload"] == "yes" and settings["format"] == "csv"
        kept = _kept(web)
        assert kept is not None and kept["sha256"] == sha256 and kept["size"] == len(content)
        assert _shown(client.get("/profiles/pb").text) == shown
        # The address the answer leaves in the browser leads back to the tab.
        again = client.get("/profiles/pb/upload", follow_redirects=False)
        assert again.status_code == 303
        assert again.headers["location"] == "/profiles/pb/basic#upload"

        started = client.post(
            "/profiles/pb/runs",
            data={"csrf_token": csrf_of(client)},
            headers={"Origin": web.url},
            follow_redirects=False,
        )
        assert started.status_code == 303, started.text
        report = _run_over(web, started.headers["location"].rsplit("/", 1)[1])
        assert report["status"] == "ok" and report["counts"]["created"] == 2, report
    assert _phonebook(web) == ["Eva Example", "Max Muster"]


def test_an_xlsx_name_makes_the_profile_read_xlsx_and_a_sync_reads_the_new_file(
    web: Server,
) -> None:
    _file_profile(web)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(PHONEBOOK_HEADER)
    sheet.append(phonebook_row("Xaver Excel", "+49 991 3000"))
    out = io.BytesIO()
    book.save(out)
    with _client(web) as client:
        sign_in(client)
        # A first upload empties the default variables naming columns the file lacks,
        # and says which.
        header = [h for h in PHONEBOOK_HEADER if h != "homephone"]
        first = _upload(client, web, _csv("Max Muster", header=header), "pb.csv")
        assert first.status_code == 200, first.text
        assert "variable 'homephone' left empty: the source has no column 'homephone'" in (
            unescape(first.text)
        )
        done = _upload(client, web, out.getvalue(), "pb.xlsx")
        assert done.status_code == 200, done.text
        assert _shown(done.text)["format"] == "xlsx"
    assert _settings(web)["format"] == "xlsx"
    web.cli("sync", "pb")
    assert _phonebook(web) == ["Xaver Excel"]


def test_a_refused_upload_is_shown_beside_the_field_and_the_previous_file_stays(
    web: Server,
) -> None:
    _file_profile(web)
    good = _csv("Max Muster")
    sha256 = hashlib.sha256(good).hexdigest()
    no_name = _csv("Nobody", header=[h for h in PHONEBOOK_HEADER if h != "displayname"])
    with _client(web) as client:
        sign_in(client)
        assert _upload(client, web, good, "pb.csv").status_code == 200
        settings = _settings(web)

        refusals = (
            (no_name, "other.csv", "the file does not fit the profile's variables"),
            (b"not a workbook", "other.xlsx", "not an xlsx workbook"),
            (b"", "other.csv", "the file is empty"),
            (b"", "", "choose a file"),
        )
        for content, filename, words in refusals:
            refused = _upload(client, web, content, filename)
            assert refused.status_code == 422, (filename, refused.text)
            assert words in _field_error(refused.text), filename
            assert f'aria-describedby="{FIELD}-help {FIELD}-error" aria-invalid="true"' in (
                refused.text
            )
            assert "Uploaded '" not in unescape(refused.text)
            # The page still shows the previous file, and the core kept it.
            shown = _shown(refused.text)
            assert shown["name"] == "pb.csv" and shown["sha256"] == sha256
            kept = _kept(web)
            assert kept is not None and kept["sha256"] == sha256 and kept["name"] == "pb.csv"
            assert _settings(web) == settings
    web.cli("sync", "pb")
    assert _phonebook(web) == ["Max Muster"]


def test_a_file_over_the_upload_limit_is_413_and_changes_nothing(web: Server) -> None:
    _file_profile(web)
    good = _csv("Max Muster")
    with _client(web) as client:
        sign_in(client)
        assert _upload(client, web, good, "pb.csv").status_code == 200
        settings = _settings(web)
        huge = b"x" * (MAX_FILE + MAX_FORM + 1)
        refused = _upload(client, web, huge, "huge.csv")
        assert refused.status_code == 413, refused.text[:500]
        assert "larger than 64 MiB" in unescape(refused.text)
        kept = _kept(web)
        assert kept is not None and kept["name"] == "pb.csv"
        assert _settings(web) == settings


def test_a_viewer_sees_the_uploaded_file_but_cannot_upload(web: Server, tmp_path: Path) -> None:
    _file_profile(web)
    path = write_csv(tmp_path / "office.csv", PHONEBOOK_HEADER, [phonebook_row("Max", "1")])
    web.cli("profile", "upload", "pb", str(path))
    sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
    add_user(web, "vera", VIEWER_PASSWORD, roles="viewer")
    with _client(web) as client:
        sign_in(client, "vera", VIEWER_PASSWORD)
        tab = client.get("/profiles/pb/basic")
        assert tab.status_code == 200
        shown = _shown(tab.text)
        assert shown["name"] == "office.csv" and shown["sha256"] == sha256
        assert 'type="file"' not in tab.text and "/profiles/pb/upload" not in tab.text
        refused = _upload(client, web, _csv("Intruder"), "evil.csv")
        assert refused.status_code == 403
        assert "needs the admin role" in refused.text
    kept = _kept(web)
    assert kept is not None and kept["sha256"] == sha256 and kept["name"] == "office.csv"


def test_only_a_file_profile_offers_an_upload(web: Server) -> None:
    web.cli(
        "profile",
        "create",
        "dir",
        "--template",
        "ldap-phonebook",
        "--set",
        "uri=ldap://127.0.0.1:1",
        "--set",
        "base_dn=dc=example,dc=test",
    )
    with _client(web) as client:
        sign_in(client)
        tab = client.get("/profiles/dir/basic")
        assert tab.status_code == 200
        assert "Uploaded file" not in tab.text and 'type="file"' not in tab.text
        refused = _upload(client, web, _csv("Max"), "pb.csv", profile="dir")
        assert refused.status_code == 422
        assert "there is nothing to upload to it" in unescape(refused.text)


# --- the Phonebook page's owner selector ------------------------------------------------------


def _add_users(server: Server, *names: str) -> None:
    with server.client(server.admin_token) as api:
        for name in names:
            response = api.post("/api/v1/users", json={"username": name})
            assert response.status_code == 201, response.text


def test_the_owner_selector_offers_every_user_and_starts_a_private_phonebook(
    web: Server,
) -> None:
    _add_users(web, "bob", "eve")
    with _client(web) as client:
        sign_in(client)
        token = csrf_of(client)
        own = {"Origin": web.url}
        added = client.post(
            "/phonebook/new",
            data={"csrf_token": token, "displayname": "Eve's dentist", "owner": "eve"},
            headers=own,
        )
        assert added.status_code == 303, added.text
        listed = client.get("/phonebook").text
        # bob has no entries yet, and is offered all the same; eve with her count.
        assert '<option value="bob">Private: bob</option>' in listed
        assert '<option value="eve">Private: eve (1)</option>' in listed
        assert '<option value="admin">Private: admin</option>' in listed

        bobs = client.get("/phonebook", params={"owner": "bob"}).text
        assert '<option value="bob" selected>Private: bob</option>' in bobs
        assert "0 phonebook entries in the private phonebook of bob" in bobs
        assert 'href="/phonebook/new?owner=bob"' in bobs
        form = client.get("/phonebook/new", params={"owner": "bob"}).text
        assert 'name="owner" type="text" value="bob"' in form
        started = client.post(
            "/phonebook/new",
            data={"csrf_token": token, "displayname": "Bob's garage", "owner": "bob"},
            headers=own,
        )
        assert started.status_code == 303, started.text
        after = client.get("/phonebook", params={"owner": "bob"}).text
        assert "1 phonebook entry in the private phonebook of bob" in after
        assert '<option value="bob" selected>Private: bob (1)</option>' in after


def test_with_many_users_the_owner_is_typed_with_suggestions(web: Server) -> None:
    names = [f"user{n:03d}" for n in range(120)]
    _add_users(web, *names)
    with _client(web) as client:
        sign_in(client)
        listed = client.get("/phonebook", params={"owner": "user007"}).text
        assert '<select id="owner"' not in listed
        assert 'name="owner" type="text" list="owner-choices" value="user007"' in listed
        suggestions = re.findall(r'<option value="([^"]*)">', listed.split("owner-choices", 2)[2])
        assert suggestions[0] == "*" and set(names) <= set(suggestions)
        assert '<option value="user119">no entries yet</option>' in listed
        assert "0 phonebook entries in the private phonebook of user007" in listed
