"""Caller-name lookup and password checks as a PBX asks them, against a real `serve`:
`/lookup` (JSON) and `/lookup.txt` (the name alone), every way a caller is let in or
refused, the `lookup` token role, and input no PBX should send."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import Server

NUMBER = "+49 991 12345"


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return dict(response.json())


def _created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return dict(response.json())


def _error(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = dict(response.json()["error"])
    assert error["status"] == status and error["message"] and error["code"]
    assert set(error) >= {"status", "code", "message", "field", "line", "errors"}
    if field is not None:
        assert error["field"] == field, error
    return error


def _token(server: Server, role: str, name: str = "pbx") -> str:
    return server.cli("token", "create", name, "--role", role).stdout.strip()


def _directory(admin: httpx.Client) -> None:
    _created(
        admin.post(
            "/api/v1/users",
            json={"username": "anna", "extension": "101", "displayname": "Anna Berg"},
        )
    )
    _created(
        admin.post(
            "/api/v1/phonebook", json={"displayname": "Müller & Söhne <GmbH>", "phone": NUMBER}
        )
    )
    _created(
        admin.post(
            "/api/v1/phonebook", json={"displayname": "Mum", "phone": "0991 12345", "owner": "anna"}
        )
    )


def test_json_and_text_answers(server: Server) -> None:
    token = _token(server, "lookup")
    with server.client(server.admin_token) as admin, server.client(token) as pbx:
        _directory(admin)
        found = _ok(pbx.get("/lookup", params={"number": "0991 12345"}))
        assert found["name"] == "Müller & Söhne <GmbH>"
        assert (found["source"], found["target"], found["field"]) == (
            "phonebook",
            "phonebook",
            "phone",
        )
        assert (found["number"], found["e164"], found["asked"]) == (
            NUMBER,
            "+4999112345",
            "+4999112345",
        )
        assert isinstance(found["id"], int) and found["match"] == "exact"
        mine = _ok(pbx.get("/lookup", params={"number": "+49 (0)991 12345", "user": "anna"}))
        assert (mine["name"], mine["source"], mine["owner"]) == ("Mum", "private", "anna")
        assert _ok(pbx.get("/lookup", params={"number": "101"}))["name"] == "Anna Berg"

        text = pbx.get("/lookup.txt", params={"number": "00499911 2345"})
        assert text.status_code == 200
        assert text.headers["content-type"] == "text/plain; charset=utf-8"
        assert text.content == "Müller & Söhne <GmbH>".encode()
        # A `+` left unencoded arrives as a space: still the number it was.
        assert pbx.get("/lookup.txt?number=+4999112345").text == "Müller & Söhne <GmbH>"
        assert pbx.get("/lookup?number=+49%20991%2012345").json()["asked"] == "+4999112345"
        by_extension = pbx.get("/lookup.txt", params={"number": "0991 12345", "user": "101"})
        assert by_extension.text == "Mum"

        # Unknown: 404 in the one error shape; the text is empty.
        _error(pbx.get("/lookup", params={"number": "0991 99999"}), 404, "number")
        empty = pbx.get("/lookup.txt", params={"number": "0991 99999"})
        assert (empty.status_code, empty.content) == (200, b"")
        assert empty.headers["content-type"] == "text/plain; charset=utf-8"
        _error(pbx.get("/lookup"), 422, "number")

        # A change is answered by the next lookup.
        entry = _ok(pbx.get("/lookup", params={"number": NUMBER}))["id"]
        _ok(admin.patch(f"/api/v1/phonebook/{entry}", json={"displayname": "Renamed"}))
        assert pbx.get("/lookup.txt", params={"number": NUMBER}).text == "Renamed"
        assert admin.delete(f"/api/v1/phonebook/{entry}").status_code == 204
        assert pbx.get("/lookup.txt", params={"number": NUMBER}).text == ""

    # The OpenAPI description has both routes, outside /api/v1.
    paths = httpx.get(f"{server.url}/api/v1/openapi.json").json()["paths"]
    assert {"/lookup", "/lookup.txt"} <= set(paths)


def test_who_may_look_up(server: Server) -> None:
    lookup_token = _token(server, "lookup")
    viewer = _token(server, "viewer", "viewer")
    with server.client(server.admin_token) as admin:
        _directory(admin)
        params = {"number": NUMBER}
        # A token of any role, as a header or in the URL.
        for token in (lookup_token, viewer, server.admin_token):
            with server.client(token) as client:
                assert _ok(client.get("/lookup", params=params))["name"]
            answer = httpx.get(f"{server.url}/lookup.txt", params={**params, "token": token})
            assert answer.text == "Müller & Söhne <GmbH>"
        # No token, a wrong one, a wrong scheme, a revoked one: 401, never a name.
        anonymous = httpx.get(f"{server.url}/lookup", params=params)
        assert _error(anonymous, 401)["code"] == "unauthenticated"
        assert anonymous.headers["www-authenticate"] == "Bearer"
        # The name-only answer of a dialplan stays empty: no error JSON as a caller's name.
        refused = httpx.get(f"{server.url}/lookup.txt", params=params)
        assert (refused.status_code, refused.text) == (401, "")
        assert refused.headers["content-type"].startswith("text/plain")
        _error(httpx.get(f"{server.url}/lookup", params={**params, "token": "pbxc_nope"}), 401)
        _error(httpx.get(f"{server.url}/lookup", params={**params, "token": ""}), 401)
        _error(
            httpx.get(f"{server.url}/lookup", params=params, headers={"Authorization": "Basic x"}),
            401,
        )
        revoked = _created(admin.post("/api/v1/tokens", json={"name": "old", "role": "lookup"}))
        assert admin.delete(f"/api/v1/tokens/{revoked['view']['id']}").status_code == 204
        _error(httpx.get(f"{server.url}/lookup", params={**params, "token": revoked["token"]}), 401)

        # A client address in lookup_clients needs no token (the tests ask from loopback).
        _ok(admin.patch("/api/v1/config", json={"lookup_clients": "10.0.0.0/8"}))
        _error(httpx.get(f"{server.url}/lookup", params=params), 401)
        changed = _ok(admin.patch("/api/v1/config", json={"lookup_clients": "127.0.0.0/8, ::1"}))
        assert changed["lookup_clients"] == "127.0.0.0/8, ::1/128"
        assert httpx.get(f"{server.url}/lookup.txt", params=params).text == "Müller & Söhne <GmbH>"
        assert _ok(httpx.get(f"{server.url}/lookup", params=params))["source"] == "phonebook"
        # …but a token it sends must still be valid, and the address reads nothing else.
        _error(httpx.get(f"{server.url}/lookup", params={**params, "token": "pbxc_nope"}), 401)
        _error(httpx.get(f"{server.url}/api/v1/phonebook"), 401)
        _error(
            httpx.post(
                f"{server.url}/api/v1/auth/check", json={"username": "anna", "password": "x"}
            ),
            401,
        )
        _error(
            admin.patch("/api/v1/config", json={"lookup_clients": "everyone"}),
            422,
            "lookup_clients",
        )


#: Routes of the API a lookup token may not use (everything but the password check).
ELSEWHERE = [
    ("GET", "/api/v1/me"),
    ("GET", "/api/v1/phonebook"),
    ("GET", "/api/v1/users/anna"),
    ("GET", "/api/v1/profiles"),
    ("GET", "/api/v1/config"),
    ("PATCH", "/api/v1/config"),
    ("GET", "/api/v1/runs"),
    ("GET", "/api/v1/tokens"),
    ("POST", "/api/v1/tokens"),
    ("GET", "/api/v1/auth/log"),
    ("GET", "/api/v1/auth/settings"),
    ("POST", "/api/v1/auth/test"),
    ("POST", "/api/v1/phonebook"),
    ("DELETE", "/api/v1/phonebook/1"),
]


def test_a_lookup_token_is_refused_everywhere_else(server: Server) -> None:
    token = _token(server, "lookup")
    with server.client(token) as pbx:
        for method, path in ELSEWHERE:
            body = {"username": "anna", "password": "x"} if path.endswith("/test") else {}
            error = _error(pbx.request(method, path, json=body), 403)
            assert "lookup token" in error["message"], (method, path)
    # Every route of the API but these is refused, whatever its method.
    paths = httpx.get(f"{server.url}/api/v1/openapi.json").json()["paths"]
    allowed = {"/lookup", "/lookup.txt", "/api/v1/auth/check", "/api/v1/openapi.json"}
    tried = {path for _, path in ELSEWHERE}
    assert {p for p in paths if p not in allowed and not p.startswith("/directory/")}
    with server.client(token) as pbx:
        for path, operations in paths.items():
            if path in allowed or path.startswith("/directory/") or path in tried:
                continue
            concrete = path.replace("{name}", "x").replace("{ref}", "1")
            concrete = concrete.replace("{run_id}", "1").replace("{token_id}", "1")
            concrete = concrete.replace("{target}", "users")
            for method in operations:
                answer = pbx.request(method.upper(), concrete, json={})
                assert answer.status_code == 403, (method, path, answer.text)


def test_password_checks_by_a_pbx(server: Server) -> None:
    token = _token(server, "lookup")
    viewer = _token(server, "viewer", "viewer")
    with server.client(server.admin_token) as admin:
        _created(admin.post("/api/v1/users", json={"username": "carol", "auth": "internal"}))
        assert (
            admin.put(
                "/api/v1/users/carol/password", json={"password": "Carol-pw-5521"}
            ).status_code
            == 204
        )
        _ok(admin.patch("/api/v1/auth/settings", json={"failure_delay_ms": 0}))
        with server.client(token) as pbx:
            right = _ok(
                pbx.post(
                    "/api/v1/auth/check", json={"username": "carol", "password": "Carol-pw-5521"}
                )
            )
            wrong = _ok(
                pbx.post("/api/v1/auth/check", json={"username": "Carol", "password": "Wrong-4410"})
            )
        assert (right["accepted"], wrong["accepted"]) == (True, False)
        mine = _ok(
            admin.post(
                "/api/v1/auth/check", json={"username": "carol", "password": "Carol-pw-5521"}
            )
        )
        assert mine["accepted"] is True
        with server.client(viewer) as reader:
            _error(
                reader.post("/api/v1/auth/check", json={"username": "carol", "password": "x"}), 403
            )
        # The token in the URL is for lookups and directories only.
        _error(
            httpx.post(
                f"{server.url}/api/v1/auth/check",
                params={"token": token},
                json={"username": "carol", "password": "Carol-pw-5521"},
            ),
            401,
        )
        log = _ok(admin.get("/api/v1/auth/log", params={"username": "carol"}))["items"]
        assert [(a["origin"], a["outcome"]) for a in log] == [
            ("api", "accepted"),
            ("pbx", "rejected"),
            ("pbx", "accepted"),
        ]


HOSTILE = [
    "9" * 10_000,
    "0" * 65,
    "anonymous",
    "\x00",
    "0991 12345\x00",
    "\x000991",
    "0991\u202e12345",
    "\ud7ff\ufffd",
    "🙂",
    "+",
    "%",
    "'; DROP TABLE phonebook; --",
    "<script>",
]


def test_hostile_input_is_answered_cleanly(server: Server, tmp_path: Path) -> None:
    token = _token(server, "lookup")
    with server.client(server.admin_token) as admin, server.client(token) as pbx:
        _directory(admin)
        for number in HOSTILE:
            answer = pbx.get("/lookup", params={"number": number})
            assert answer.status_code in (404, 422), (number[:20], answer.text)
            _error(answer, answer.status_code, "number")
            text = pbx.get("/lookup.txt", params={"number": number})
            assert (text.status_code, text.content) == (200, b""), number[:20]
            with_user = pbx.get("/lookup.txt", params={"number": NUMBER, "user": number})
            assert with_user.text == "Müller & Söhne <GmbH>"
        # Raw query strings a client library would not make.
        for query in (
            "number=%00",
            "number=0991%0012345",
            "number=%ZZ",
            "number=%F0%9F",
            "number=%FF%FE",
            "number=0991+12345&number=101",
            "number=0991%2012345&user=%00",
            "number=0991%2012345&user=%ED%A0%80",
        ):
            answer = pbx.get(f"/lookup.txt?{query}")
            assert answer.status_code == 200, (query, answer.text)
            answer = pbx.get(f"/lookup?{query}")
            assert answer.status_code in (200, 404, 422), (query, answer.text)
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def test_a_token_in_the_url_is_never_logged(server: Server, tmp_path: Path) -> None:
    token = _token(server, "lookup")
    bogus = "pbxc_" + "Q" * 40
    with server.client(server.admin_token) as admin:
        _directory(admin)
    for t in (token, bogus):
        for path in ("/lookup", "/lookup.txt", "/api/v1/phonebook", "/nowhere"):
            httpx.get(f"{server.url}{path}", params={"number": NUMBER, "token": t})
            httpx.get(f"{server.url}{path}", params={"number": "\x00" * 80, "token": t})
    server_log = (tmp_path / "serve.log").read_text()
    assert token not in server_log and bogus not in server_log
    assert token[5:15] not in server_log
