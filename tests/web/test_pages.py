"""The admin pages over HTTP against a real `serve`: signing in and out, the session
cookie, CSRF and Origin checks, roles, security headers, the vendored htmx."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx

from pbx_connector.web import HTMX_SHA256, HTMX_VERSION
from pbx_connector.web.assets import STATIC_DIR
from tests.api.conftest import Server
from tests.helpers import PHONEBOOK_HEADER, phonebook_row, write_csv
from tests.web.conftest import VIEWER_PASSWORD, add_user, csrf_of, sign_in


def _profile(server: Server, tmp_path: Path, rows: int = 5) -> None:
    data = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(rows)]
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, data)
    server.cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={path}")


def _client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30)


def test_the_vendored_htmx_is_the_pinned_release() -> None:
    data = (STATIC_DIR / "htmx.min.js").read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256
    assert f'version:"{HTMX_VERSION}"'.encode() in data
    assert HTMX_VERSION.startswith("2.")


def test_without_a_session_every_page_leads_to_the_sign_in_form(web: Server) -> None:
    with _client(web) as client:
        home = client.get("/")
        assert home.status_code == 303 and home.headers["location"] == "/login"
        runs = client.get("/runs")
        assert runs.status_code == 303 and runs.headers["location"] == "/login?next=/runs"
        fragment = client.get("/runs/1/report", headers={"HX-Request": "true"})
        assert fragment.status_code == 401 and fragment.headers["hx-redirect"] == "/login"
        form = client.get("/login")
        assert form.status_code == 200
        assert '<label for="username">' in form.text and '<label for="password">' in form.text


def test_security_headers_on_every_page_and_file(web: Server) -> None:
    with _client(web) as client:
        for path in ("/login", "/", "/static/web.css", "/static/htmx.min.js"):
            headers = client.get(path).headers
            csp = headers["content-security-policy"]
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp
            assert headers["x-content-type-options"] == "nosniff"
            assert headers["referrer-policy"] == "same-origin"
        sign_in(client)
        page = client.get("/")
        assert page.headers["cache-control"] == "no-store"
        assert "<script>" not in page.text and " style=" not in page.text


def test_a_wrong_password_is_shown_next_to_the_field_and_audited(web: Server) -> None:
    with _client(web) as client:
        refused = sign_in(client, password="not-the-password")
        assert refused.status_code == 401
        assert 'id="password-error"' in refused.text
        assert "wrong username or password" in refused.text
        assert 'value="admin"' in refused.text  # the username is kept, never the password
        assert "not-the-password" not in refused.text
        assert "pbxc_session" not in client.cookies
    log = json.loads(web.cli("auth", "log", "--json").stdout)
    assert log[0]["username"] == "admin" and log[0]["origin"] == "web"
    assert log[0]["outcome"] == "rejected"


def test_signing_in_sets_a_new_httponly_samesite_session_cookie(web: Server) -> None:
    with _client(web) as client:
        client.cookies.set("pbxc_session", "chosen-by-an-attacker")
        signed = sign_in(client)
        assert signed.status_code == 303 and signed.headers["location"] == "/"
        cookie = next(
            c for c in signed.headers.get_list("set-cookie") if c.startswith("pbxc_session=")
        )
        attrs = [a.strip().lower() for a in cookie.split(";")]
        assert "httponly" in attrs and "samesite=lax" in attrs and "path=/" in attrs
        assert "secure" not in attrs  # plain http on loopback
        session_id = cookie.split(";")[0].split("=", 1)[1]
        assert session_id != "chosen-by-an-attacker" and len(session_id) >= 40
        page = client.get("/")
        assert page.status_code == 200 and "Connector" in page.text and "Sign out" in page.text
    log = json.loads(web.cli("auth", "log", "--json").stdout)
    assert log[0]["origin"] == "web" and log[0]["outcome"] == "accepted"
    # Signing in again gives another session id.
    with _client(web) as again:
        sign_in(again)
        assert again.cookies["pbxc_session"] != session_id


def test_state_changes_need_the_csrf_token_and_our_origin(web: Server, tmp_path: Path) -> None:
    _profile(web, tmp_path)
    with _client(web) as client:
        sign_in(client)
        token = csrf_of(client)
        own = {"Origin": web.url}
        assert client.post("/profiles/pb/runs", headers=own).status_code == 403
        wrong = client.post("/profiles/pb/runs", data={"csrf_token": "x" * 43}, headers=own)
        assert wrong.status_code == 403
        foreign = client.post(
            "/profiles/pb/runs",
            data={"csrf_token": token},
            headers={"Origin": "http://evil.example"},
        )
        assert foreign.status_code == 403
        assert client.post("/logout", headers={"Origin": "http://evil.example"}).status_code == 403
        assert client.get("/").status_code == 200  # still signed in
        assert json.loads(web.cli("runs", "--json").stdout) == []
        # The header form of the token, as htmx sends it (hx-headers on <body>).
        started = client.post("/profiles/pb/runs", headers={**own, "X-CSRF-Token": token})
        assert started.status_code == 303 and started.headers["location"].startswith("/runs/")


def test_import_now_runs_in_the_background_and_its_page_shows_the_counts(
    web: Server, tmp_path: Path
) -> None:
    _profile(web, tmp_path, rows=7)
    with _client(web) as client:
        sign_in(client)
        page = client.get("/")
        assert ">pb</a>" in page.text and "csv-phonebook" in page.text and "never run" in page.text
        started = client.post(
            "/profiles/pb/runs", data={"csrf_token": csrf_of(client)}, headers={"Origin": web.url}
        )
        location = started.headers["location"]
        run_id = int(location.rsplit("/", 1)[1])
        deadline = time.monotonic() + 60
        while True:
            report = client.get(f"{location}/report", headers={"HX-Request": "true"})
            assert report.status_code == 200
            if "hx-trigger" not in report.text or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert "status-ok" in report.text and "7 created" in report.text
        assert "Created phonebook entry &#39;Entry 0&#39;" in report.text
        runs = client.get("/runs")
        assert f'href="/runs/{run_id}"' in runs.text and ">web<" in runs.text
        assert "7 created" in client.get("/").text
    listed = json.loads(web.cli("runs", "--json").stdout)
    assert listed[0]["trigger"] == "web" and listed[0]["counts"]["created"] == 7


def test_a_viewer_sees_the_pages_but_cannot_import(web: Server, tmp_path: Path) -> None:
    _profile(web, tmp_path)
    add_user(web, "vera", VIEWER_PASSWORD, roles="viewer")
    with _client(web) as client:
        assert sign_in(client, "vera", VIEWER_PASSWORD).status_code == 303
        page = client.get("/")
        assert page.status_code == 200 and ">pb</a>" in page.text
        assert "Import Now" not in page.text
        refused = client.post(
            "/profiles/pb/runs", data={"csrf_token": csrf_of(client)}, headers={"Origin": web.url}
        )
        assert refused.status_code == 403 and "admin role" in refused.text
    assert json.loads(web.cli("runs", "--json").stdout) == []


def test_a_user_without_a_role_cannot_sign_in(web: Server) -> None:
    add_user(web, "paula", VIEWER_PASSWORD)
    with _client(web) as client:
        refused = sign_in(client, "paula", VIEWER_PASSWORD)
        assert refused.status_code == 403 and 'id="username-error"' in refused.text
        assert "pbxc_session" not in client.cookies


def test_signing_out_ends_the_session_in_the_store(web: Server) -> None:
    with _client(web) as client:
        sign_in(client)
        old = client.cookies["pbxc_session"]
        out = client.post(
            "/logout", data={"csrf_token": csrf_of(client)}, headers={"Origin": web.url}
        )
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert "pbxc_session" not in client.cookies
    with _client(web) as replay:
        replay.cookies.set("pbxc_session", old)
        assert replay.get("/").status_code == 303


def test_the_sign_in_form_needs_its_own_token(web: Server) -> None:
    with _client(web) as client:
        forged = client.post(
            "/login",
            data={"username": "admin", "password": "admin-pass-123"},
            headers={"Origin": web.url},
        )
        assert forged.status_code == 403
        assert "pbxc_session" not in client.cookies
