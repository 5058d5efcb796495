"""Users, phonebooks and speed dials over HTTP against a real `serve`: every route, search
and paging, the owner filter, every error status, the warning on an imported record, and
passwords and PINs that go in and never come out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Server
from tests.helpers import PHONEBOOK_HEADER, phonebook_row, write_csv

BEYOND_INT64 = str(2**63)
SECRET = "Corr3ct-Horse-Battery"


def _error(
    response: httpx.Response, status: int, code: str | None = None, field: str | None = None
) -> dict[str, Any]:
    """The one error shape, with the status, code and field expected."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert {"status", "code", "message", "field", "line", "errors"} <= set(error)
    assert error["status"] == status and error["message"]
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert error["field"] == field, error
    assert "Traceback" not in response.text
    return dict(error)


def _created(response: httpx.Response, target: str) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    record = dict(response.json())
    assert response.headers["location"] == f"/api/v1/{target}/{record['id']}"
    return record


def test_users_and_their_write_only_secrets(server: Server) -> None:
    seen: list[str] = []  # every response body, to prove the secrets never come back

    def keep(response: httpx.Response) -> None:
        seen.append(response.read().decode())

    with server.client(server.admin_token) as client:
        client.event_hooks = {"request": [], "response": [keep]}
        alice = _created(
            client.post(
                "/api/v1/users",
                json={
                    "username": "Alice",
                    "displayname": "Alice Liddell",
                    "extension": "201",
                    "phone": "+49 991 12345",
                    "enabled": True,
                    "roles": [],
                },
            ),
            "users",
        )
        assert alice["username"] == "alice" and alice["phone_e164"] == "+4999112345"
        assert alice["password_set"] is False and alice["pin_set"] is False
        assert client.get("/api/v1/users/ALICE").json() == alice
        assert client.get(f"/api/v1/users/{alice['id']}").json() == alice

        edited = client.patch("/api/v1/users/alice", json={"job": "Tester", "enabled": "no"})
        assert edited.status_code == 200, edited.text
        assert edited.json()["warnings"] == []
        assert edited.json()["record"]["job"] == "Tester"
        assert edited.json()["record"]["enabled"] is False

        put = client.put("/api/v1/users/alice/password", json={"password": SECRET})
        assert put.status_code == 204 and put.content == b""
        assert client.put("/api/v1/users/alice/pin", json={"pin": "4711"}).status_code == 204
        after = client.get("/api/v1/users/alice").json()
        assert after["password_set"] is True and after["pin_set"] is True
        assert "password" not in after and "pin" not in after

        # Secrets go only through their own routes, and never empty.
        for body in ({"password": ""}, {"password": "   "}):
            _error(client.put("/api/v1/users/alice/password", json=body), 422, field="password")
        _error(client.put("/api/v1/users/alice/pin", json={"pin": "12ab"}), 422, field="pin")
        _error(client.put("/api/v1/users/alice/pin", json={"password": SECRET}), 422)
        _error(client.put("/api/v1/users/nobody/password", json={"password": SECRET}), 404)
        refused = _error(
            client.post("/api/v1/users", json={"username": "bob", "password": SECRET}),
            422,
            field="password",
        )
        assert "/api/v1/users/{ref}/password" in refused["message"]
        refused = _error(client.patch("/api/v1/users/alice", json={"pin": "1234"}), 422)
        assert refused["field"] == "pin" and "/pin" in refused["message"]

        # Invalid input names its field; taken names are conflicts.
        _error(client.post("/api/v1/users", json={"username": "x", "nick": "y"}), 422, field="nick")
        _error(client.post("/api/v1/users", json={"displayname": "No Name"}), 422, field="username")
        _error(
            client.post("/api/v1/users", json={"username": "b", "email": "@"}), 422, field="email"
        )
        _error(client.post("/api/v1/users", json={"username": "b", "job": {}}), 422, field="job")
        _error(client.patch("/api/v1/users/alice", json={}), 422)
        _error(client.post("/api/v1/users", json=["username"]), 422)
        _error(client.post("/api/v1/users", json={"username": "alice"}), 409, "conflict")
        taken = client.post("/api/v1/users", json={"username": "bob", "extension": "201"})
        _error(taken, 409, "conflict", field="extension")

        # The built-in admin stays.
        _error(client.delete("/api/v1/users/admin"), 403, "protected_record")
        _error(client.patch("/api/v1/users/admin", json={"username": "root"}), 403)

        assert client.delete("/api/v1/users/alice").status_code == 204
        _error(client.get("/api/v1/users/alice"), 404, "not_found")
        _error(client.delete(f"/api/v1/users/{alice['id']}"), 404)
        _error(client.get(f"/api/v1/users/{BEYOND_INT64}"), 404)
        listed = client.get("/api/v1/users").json()
        assert [u["username"] for u in listed["items"]] == ["admin"] and listed["total"] == 1
    assert seen and not any(SECRET in text or "4711" in text for text in seen)

    # A username that no store can hold names nobody.
    with server.client(server.admin_token) as client:
        nul = client.get("/api/v1/users/%00")
    if nul.status_code == 503 and server.db.startswith("postgresql"):
        pytest.xfail("the core looks a NUL up on PostgreSQL instead of refusing it")
    _error(nul, 404)


def test_phonebook_search_paging_and_owner(server: Server) -> None:
    with server.client(server.admin_token) as client:
        _created(client.post("/api/v1/users", json={"username": "carol"}), "users")
        for n in range(23):
            entry = {"displayname": f"Entry {n:02}", "phone": f"+49 991 {5000 + n}"}
            _created(client.post("/api/v1/phonebook", json=entry), "phonebook")
        mueller = _created(
            client.post(
                "/api/v1/phonebook",
                json={"displayname": "Jürgen Müller", "phone": "0991 12345", "owner": "carol"},
            ),
            "phonebook",
        )
        assert mueller["owner"] == "carol" and mueller["phone_e164"] == "+4999112345"
        assert mueller["origin"] is None

        def page(**params: Any) -> dict[str, Any]:
            response = client.get("/api/v1/phonebook", params=params)
            assert response.status_code == 200, response.text
            return dict(response.json())

        # Search: case-insensitive, and by the digits of a number in any of its forms.
        for term in ("MÜLLER", "jürgen", "12345", "4999112345"):
            found = page(search=term)
            assert found["total"] == 1 and found["items"][0]["id"] == mueller["id"], term
        assert page(search="nothing like it")["total"] == 0

        # Paging: the total counts every match, the page holds at most `limit`.
        assert page(limit=10)["total"] == 24 and len(page(limit=10)["items"]) == 10
        last = page(search="entry", limit=10, offset=20, order="-displayname")
        assert last["total"] == 23
        assert [e["displayname"] for e in last["items"]] == ["Entry 02", "Entry 01", "Entry 00"]
        assert page(limit=0) == {"items": [], "total": 24, "total_exact": True}

        # Owner: a user's private phonebook, or (empty) the global one.
        assert [e["id"] for e in page(owner="carol")["items"]] == [mueller["id"]]
        assert page(owner="")["total"] == 23

        edited = client.patch(f"/api/v1/phonebook/{mueller['id']}", json={"owner": None})
        assert edited.status_code == 200 and edited.json()["record"]["owner"] == ""
        _error(client.patch(f"/api/v1/phonebook/{mueller['id']}", json={"owner": "x"}), 422)
        _error(client.get("/api/v1/phonebook", params={"order": "nope"}), 422, field="order")
        _error(client.get("/api/v1/phonebook", params={"limit": 5000}), 422, field="limit")
        _error(client.get("/api/v1/phonebook", params={"offset": -1}), 422, field="offset")
        _error(client.get("/api/v1/phonebook", params={"offset": 2**64}), 422, field="offset")
        _error(client.get("/api/v1/phonebook", params={"search": "x" * 300}), 422)
        _error(client.post("/api/v1/phonebook", json={"phone": "1"}), 422, field="displayname")
        _error(client.get("/api/v1/phonebook/abc"), 404, "not_found")
        _error(client.get(f"/api/v1/phonebook/{BEYOND_INT64}"), 404)
        assert client.delete(f"/api/v1/phonebook/{mueller['id']}").status_code == 204
        _error(client.delete(f"/api/v1/phonebook/{mueller['id']}"), 404)

        # Speed dials: the same routes; a code is unique.
        dial = _created(
            client.post("/api/v1/speeddials", json={"code": "*11", "number": "+49 991 777"}),
            "speeddials",
        )
        assert client.get(f"/api/v1/speeddials/{dial['id']}").json() == dial
        _error(client.post("/api/v1/speeddials", json={"code": "*11", "number": "1"}), 409)
        _error(client.post("/api/v1/speeddials", json={"code": "x", "number": "1"}), 422)
        changed = client.patch(f"/api/v1/speeddials/{dial['id']}", json={"displayname": "Ops"})
        assert changed.json() == {"record": {**dial, "displayname": "Ops"}, "warnings": []}
        found = client.get("/api/v1/speeddials", params={"search": "ops"}).json()
        assert found["total"] == 1 and found["items"][0]["id"] == dial["id"]
        _error(client.get(f"/api/v1/speeddials/{BEYOND_INT64}"), 404)
        assert client.delete(f"/api/v1/speeddials/{dial['id']}").status_code == 204
        assert client.get("/api/v1/speeddials").json() == {
            "items": [],
            "total": 0,
            "total_exact": True,
        }


def test_imported_records_warn_and_roles_guard_writes(server: Server, tmp_path: Path) -> None:
    rows = [phonebook_row("Imported Person", "+49 991 4242")]
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, rows)
    server.cli("profile", "create", "crm", "-t", "csv-phonebook", "--set", f"path={path}")
    server.cli("sync", "crm")
    with server.client(server.admin_token) as admin:
        entry = admin.get("/api/v1/phonebook", params={"search": "imported"}).json()["items"][0]
        assert entry["origin"]["profile"] == "crm"
        edited = admin.patch(f"/api/v1/phonebook/{entry['id']}", json={"notes": "by hand"})
        assert edited.status_code == 200, edited.text
        assert edited.json()["record"]["notes"] == "by hand"
        assert len(edited.json()["warnings"]) == 1 and "'crm'" in edited.json()["warnings"][0]
        created = admin.post("/api/v1/tokens", json={"name": "wall", "role": "viewer"})
        viewer_token = created.json()["token"]

    with server.client() as anonymous:
        for path in ("/api/v1/users", "/api/v1/phonebook/1", "/api/v1/speeddials"):
            _error(anonymous.get(path), 401, "unauthenticated")
        _error(anonymous.post("/api/v1/users", json={"username": "eve"}), 401)

    with server.client(viewer_token) as viewer:
        assert viewer.get("/api/v1/phonebook").json()["total"] == 1
        assert viewer.get("/api/v1/users/admin").json()["builtin"] is True
        assert viewer.get("/api/v1/speeddials").status_code == 200
        denied = [
            viewer.post("/api/v1/users", json={"username": "eve"}),
            viewer.patch(f"/api/v1/phonebook/{entry['id']}", json={"notes": "x"}),
            viewer.delete(f"/api/v1/phonebook/{entry['id']}"),
            viewer.post("/api/v1/speeddials", json={"code": "1", "number": "2"}),
            viewer.put("/api/v1/users/admin/password", json={"password": SECRET}),
            viewer.put("/api/v1/users/admin/pin", json={"pin": "1234"}),
        ]
        for response in denied:
            _error(response, 403, "permission_denied")

    with server.client(server.admin_token) as admin:
        assert admin.get("/api/v1/users/eve").status_code == 404
        assert admin.get("/api/v1/users/admin").json()["password_set"] is False
        openapi = admin.get("/api/v1/openapi.json").json()
        for path in ("/api/v1/users/{ref}", "/api/v1/users/{ref}/pin", "/api/v1/phonebook"):
            assert path in openapi["paths"]
