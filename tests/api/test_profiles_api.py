"""Templates, instance settings and profiles over HTTP, against the real `serve`: every
route, the statuses of every way a request can fail, secrets that go in and never come
out, export then import, and evaluating unsaved expressions without saving them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import Server
from tests.helpers import (
    PHONEBOOK_HEADER,
    USERS_HEADER,
    free_port,
    phonebook_row,
    write_csv,
)

PROFILES = "/api/v1/profiles"
SECRET = "Bind-S3cret-4711"
NEW_SECRET = "Other-S3cret-0815"


def _error(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    """The one error shape; `field` names what was wrong when the request was invalid."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert {"status", "code", "message", "field", "line", "errors"} <= set(error)
    assert error["status"] == status and error["message"]
    if field is not None:
        assert error["field"] == field, error
    assert "Traceback" not in response.text
    return error


def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _phonebook_csv(tmp_path: Path, rows: int = 12) -> Path:
    data = [
        phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}", organisation="ACME" if n % 2 else "")
        for n in range(rows)
    ]
    return write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, data)


def _create(client: httpx.Client, name: str, template: str, **settings: str) -> dict[str, Any]:
    body = {"name": name, "template": template, "settings": settings}
    created: dict[str, Any] = _ok(client.post(PROFILES, json=body), 201)
    return created


def _viewer_token(admin: httpx.Client) -> str:
    created = _ok(admin.post("/api/v1/tokens", json={"name": "viewer", "role": "viewer"}), 201)
    return str(created["token"])


def test_templates_and_instance_config(server: Server) -> None:
    with server.client() as anonymous:
        _error(anonymous.get("/api/v1/templates"), 401)
        _error(anonymous.get("/api/v1/config"), 401)
    with server.client(server.admin_token) as admin:
        templates = _ok(admin.get("/api/v1/templates"))
        by_name = {t["name"]: t for t in templates["items"]}
        assert templates["total"] == len(templates["items"]) > 5
        assert by_name["csv-phonebook"]["target"] == "phonebook"
        assert by_name["peer-phonebook"]["available"] is True
        ldap = _ok(admin.get("/api/v1/templates/ldap-users"))
        assert ldap == by_name["ldap-users"]
        assert {"name": "bind_password", "secret": True} in [
            {"name": s["name"], "secret": s["secret"]} for s in ldap["settings"]
        ]
        _error(admin.get("/api/v1/templates/no-such-template"), 404)

        lookup = {"lookup_match": "exact", "lookup_suffix_digits": "8", "lookup_clients": ""}
        assert _ok(admin.get("/api/v1/config")) == {
            "default_region": "DE",
            "outside_line_prefix": "",
            "timezone": "",
            **lookup,
        }
        changed = _ok(
            admin.patch(
                "/api/v1/config",
                json={"default_region": "at", "outside_line_prefix": "0", "timezone": "UTC"},
            )
        )
        assert changed == {
            "default_region": "AT",
            "outside_line_prefix": "0",
            "timezone": "UTC",
            **lookup,
        }
        _error(admin.patch("/api/v1/config", json={"timezone": "Mars/Base"}), 422, "timezone")
        # All or none: a bad value keeps the good one beside it from being written.
        bad = {"outside_line_prefix": "9", "default_region": "XX"}
        _error(admin.patch("/api/v1/config", json=bad), 422, "default_region")
        _error(admin.patch("/api/v1/config", json={"outside_line_prefix": "0x"}), 422)
        _error(admin.patch("/api/v1/config", json={"region": "AT"}), 422, "region")
        _error(admin.patch("/api/v1/config", json={"default_region": 49}), 422, "default_region")
        assert _ok(admin.patch("/api/v1/config", json={})) == changed
        assert _ok(admin.get("/api/v1/config")) == changed
        viewer_token = _viewer_token(admin)
    with server.client(viewer_token) as viewer:
        assert _ok(viewer.get("/api/v1/config")) == changed
        assert _ok(viewer.get("/api/v1/templates/csv-users"))["name"] == "csv-users"
        _error(viewer.patch("/api/v1/config", json={"default_region": "CH"}), 403)


def test_profiles_crud_list_and_statuses(server: Server, tmp_path: Path) -> None:
    pb = _phonebook_csv(tmp_path)
    only_names = write_csv(tmp_path / "names.csv", ["displayname", "phone"], [["Ann", "+4999"]])
    staff = write_csv(tmp_path / "staff.csv", USERS_HEADER, [["ann", "Ann", "", "", "", "20"]])
    with server.client(server.admin_token) as admin:
        body = {
            "name": "office",
            "template": "csv-phonebook",
            "mode": "update",
            "settings": {"path": str(pb)},
        }
        response = admin.post(PROFILES, json=body)
        created = _ok(response, 201)
        assert response.headers["location"] == f"{PROFILES}/office"
        office = created["profile"]
        assert office["mode"] == "update" and office["settings"]["path"] == str(pb)
        assert created["notes"] == [] and office["secrets_set"] == []
        # A CSV without the template's columns: the notes say which variables were emptied.
        narrow = _create(admin, "branch", "csv-phonebook", path=str(only_names))
        assert any("givenname" in note for note in narrow["notes"])
        assert narrow["profile"]["variables"]["givenname"] == ""
        _create(admin, "staff", "csv-users", path=str(staff))

        _error(admin.post(PROFILES, json=body), 409)
        _error(admin.post(PROFILES, content=b"{not json"), 422)
        _error(admin.post(PROFILES, json={"name": "x"}), 422, "template")
        _error(admin.post(PROFILES, json={**body, "name": "x", "colour": "red"}), 422, "colour")
        _error(
            admin.post(PROFILES, json={**body, "name": "x", "template": "nope"}), 422, "template"
        )
        _error(admin.post(PROFILES, json={**body, "name": "x", "mode": "sideways"}), 422, "mode")
        bogus = {**body, "name": "x", "settings": {"path": str(pb), "bogus": "1"}}
        _error(admin.post(PROFILES, json=bogus), 422, "bogus")
        _error(admin.post(PROFILES, json={**body, "name": "bad name"}), 422)
        _error(admin.post(PROFILES, json={"name": "x", "template": "csv-phonebook"}), 422, "path")

        def names(**params: Any) -> list[str]:
            page = _ok(admin.get(PROFILES, params=params))
            return [p["name"] for p in page["items"]]

        listed = _ok(admin.get(PROFILES))
        assert listed["total"] == 3 and listed["items"][0] == _ok(admin.get(f"{PROFILES}/branch"))
        assert names() == ["branch", "office", "staff"]
        assert names(order="-name") == ["staff", "office", "branch"]
        assert names(order="template") == ["branch", "office", "staff"]
        assert names(search="OFF") == ["office"]
        assert names(search="users") == ["staff"]  # the template's name is searched too
        page = _ok(admin.get(PROFILES, params={"limit": 1, "offset": 1}))
        assert page["total"] == 3 and [p["name"] for p in page["items"]] == ["office"]
        assert _ok(admin.get(PROFILES, params={"search": "phonebook", "limit": 1}))["total"] == 2
        _error(admin.get(PROFILES, params={"order": "mode"}), 422, "order")
        _error(admin.get(PROFILES, params={"limit": 5000}), 422, "limit")
        _error(admin.get(PROFILES, params={"offset": -1}), 422, "offset")

        change = {"mode": "mirror", "settings": {"max_delete": "20", "region": "AT"}}
        changed = _ok(admin.patch(f"{PROFILES}/office", json=change))
        assert changed["mode"] == "mirror" and changed["settings"]["max_delete"] == "20"
        assert changed["settings"]["region"] == "AT"
        bad_changes = [
            ({"settings": {"delimiter": "xx"}}, "delimiter"),
            ({"settings": {"region": "XX"}}, "region"),
            ({"settings": {"max_delete": "lots"}}, None),
            ({"settings": {"nope": "1"}}, "nope"),
            ({"settings": {"path": 5}}, "settings.path"),
            ({"mode": "sideways"}, "mode"),
            ({"setings": {}}, "setings"),
            ({"secrets": {"path": "x"}}, "path"),
        ]
        for bad_change, field in bad_changes:
            _error(admin.patch(f"{PROFILES}/office", json=bad_change), 422, field)
        assert _ok(admin.get(f"{PROFILES}/office")) == changed
        assert _ok(admin.patch(f"{PROFILES}/office", json={})) == changed

        _error(admin.get(f"{PROFILES}/nope"), 404)
        _error(admin.patch(f"{PROFILES}/nope", json={"mode": "update"}), 404)
        _error(admin.delete(f"{PROFILES}/nope"), 404)
        viewer_token = _viewer_token(admin)

    with server.client() as anonymous:
        _error(anonymous.get(PROFILES), 401)
        _error(anonymous.post(PROFILES, json=body), 401)
    with server.client(viewer_token) as viewer:
        assert _ok(viewer.get(PROFILES))["total"] == 3
        assert _ok(viewer.get(f"{PROFILES}/office"))["name"] == "office"
        _error(viewer.post(PROFILES, json={**body, "name": "mine"}), 403)
        _error(viewer.patch(f"{PROFILES}/office", json={"mode": "update"}), 403)
        _error(viewer.delete(f"{PROFILES}/office"), 403)
        _error(viewer.post(f"{PROFILES}/import", json={}), 403)

    # Deleting keeps the profile's records unless purged.
    server.cli("sync", "office")
    server.cli("sync", "branch")
    with server.client(server.admin_token) as admin:
        deleted = admin.delete(f"{PROFILES}/office", params={"purge": "true"})
        assert deleted.status_code == 204 and deleted.content == b""
        assert admin.delete(f"{PROFILES}/branch").status_code == 204
        _error(admin.get(f"{PROFILES}/office"), 404)
        assert names() == ["staff"]
    kept = json.loads(server.cli("phonebook", "list", "--json").stdout)
    assert [entry["displayname"] for entry in kept] == ["Ann"]


def test_secrets_are_write_only_and_export_imports_back(server: Server) -> None:
    seen: list[httpx.Response] = []

    def send(response: httpx.Response) -> httpx.Response:
        seen.append(response)
        return response

    settings = {
        "uri": f"ldap://127.0.0.1:{free_port()}",  # nothing listens: reading it fails
        "security": "none",
        "base_dn": "dc=example,dc=test",
        "bind_dn": "cn=reader,dc=example,dc=test",
    }
    body = {"name": "dir", "template": "ldap-users", "settings": settings}
    with server.client(server.admin_token) as admin:
        secret_body = {**body, "secrets": {"bind_password": SECRET}}
        created = _ok(send(admin.post(PROFILES, json=secret_body)), 201)
        assert created["profile"]["secrets_set"] == ["bind_password"]
        assert "bind_password" not in created["profile"]["settings"]
        # A secret has its own place: never among the settings, never empty, never unknown.
        wrong_place = {**body, "name": "x", "settings": {**settings, "bind_password": SECRET}}
        _error(send(admin.post(PROFILES, json=wrong_place)), 422, "bind_password")
        empty = {**body, "name": "x", "secrets": {"bind_password": " "}}
        _error(send(admin.post(PROFILES, json=empty)), 422, "bind_password")
        unknown = {**body, "name": "x", "secrets": {"uri": SECRET}}
        _error(send(admin.post(PROFILES, json=unknown)), 422, "uri")
        _error(send(admin.post(PROFILES, json={**secret_body, "name": "x", "mode": 1})), 422)

        change = {"secrets": {"bind_password": NEW_SECRET}, "settings": {"filter": "(uid=*)"}}
        changed = _ok(send(admin.patch(f"{PROFILES}/dir", json=change)))
        assert changed["secrets_set"] == ["bind_password"]
        prefilter = {"prefilter": "mail != ''"}
        _ok(send(admin.put(f"{PROFILES}/dir/prefilter", json=prefilter)))
        variables = {"job": "{{ title | first_value }}"}
        _ok(send(admin.put(f"{PROFILES}/dir/variables", json=variables)))
        shown = _ok(send(admin.get(f"{PROFILES}/dir")))
        assert shown["secrets_set"] == ["bind_password"] and shown["prefilter"] == "mail != ''"
        send(admin.get(PROFILES))
        # The directory cannot be reached: an error, and still no secret in it.
        _error(send(admin.get(f"{PROFILES}/dir/preview")), 502)
        _error(send(admin.post(f"{PROFILES}/dir/evaluate", json={})), 502)

        exported = send(admin.get(f"{PROFILES}/dir/export"))
        assert exported.status_code == 200
        assert exported.headers["content-type"].startswith("application/json")
        assert exported.headers["content-disposition"] == 'attachment; filename="dir.json"'
        export = exported.json()
        assert export["secrets_not_exported"] == ["bind_password"]

        imported = send(admin.post(f"{PROFILES}/import", params={"name": "dir-copy"}, json=export))
        copy = _ok(imported, 201)
        assert imported.headers["location"] == f"{PROFILES}/dir-copy"
        assert copy["profile"]["secrets_set"] == []
        assert any("bind_password" in note for note in copy["notes"])
        for same in ("template", "mode", "settings", "variables", "prefilter"):
            assert copy["profile"][same] == shown[same], same
        _error(send(admin.post(f"{PROFILES}/import", json=export)), 409)
        _error(send(admin.post(f"{PROFILES}/import", json={"format": "other"})), 422)
        unknown_template = {**export, "name": "y", "template": "nope"}
        _error(send(admin.post(f"{PROFILES}/import", json=unknown_template)), 422, "template")
        _error(send(admin.post(f"{PROFILES}/import", json=[export])), 422)
        _error(send(admin.get(f"{PROFILES}/nope/export")), 404)
        send(admin.get("/api/v1/openapi.json"))

    for response in seen:
        assert SECRET not in response.text and NEW_SECRET not in response.text, response.text


def test_variables_prefilter_preview_and_evaluate(server: Server, tmp_path: Path) -> None:
    pb = _phonebook_csv(tmp_path, rows=12)
    url = f"{PROFILES}/pb"
    with server.client(server.admin_token) as admin:
        _create(admin, "pb", "csv-phonebook", path=str(pb))

        variables = _ok(admin.get(f"{url}/variables"))
        assert variables["displayname"] == "{{ displayname }}"
        upper = {"organisation": "{{ organisation | upper }}"}
        saved = _ok(admin.put(f"{url}/variables", json=upper))
        assert saved == {**variables, **upper}
        _error(
            admin.put(f"{url}/variables", json={"organisation": "{{ oops("}), 422, "organisation"
        )
        _error(admin.put(f"{url}/variables", json={"nofield": "x"}), 422, "nofield")
        _error(admin.put(f"{url}/variables", json={"displayname": ""}), 422, "displayname")
        _error(admin.put(f"{url}/variables", json=["displayname"]), 422)
        _error(admin.put(f"{PROFILES}/nope/variables", json=upper), 404)
        assert _ok(admin.get(f"{url}/variables")) == saved

        assert _ok(admin.get(f"{url}/prefilter")) == {"prefilter": ""}
        only_acme = {"prefilter": "organisation == 'ACME'"}
        assert _ok(admin.put(f"{url}/prefilter", json=only_acme)) == only_acme
        _error(admin.put(f"{url}/prefilter", json={"prefilter": "a =="}), 422, "pre-filter")
        _error(admin.put(f"{url}/prefilter", json={"prefilter": "", "filter": "x"}), 422, "filter")
        assert _ok(admin.get(f"{url}/prefilter")) == only_acme

        preview = _ok(admin.get(f"{url}/preview", params={"limit": 3}))
        assert preview["fields"] == PHONEBOOK_HEADER and preview["source"] == str(pb)
        assert [r["displayname"] for r in preview["rows"]] == ["Entry 0", "Entry 1", "Entry 2"]
        assert len(_ok(admin.get(f"{url}/preview"))["rows"]) == 10
        _error(admin.get(f"{url}/preview", params={"limit": 0}), 422, "limit")
        _error(admin.get(f"{PROFILES}/nope/preview"), 404)

        unsaved = {
            "variables": {"displayname": "{{ displayname | upper }}", "fax": "{{ oops("},
            "prefilter": "organisation != 'ACME'",
            "limit": 4,
        }
        result = _ok(admin.post(f"{url}/evaluate", json=unsaved))
        rows = result["rows"]
        assert [r["fields"]["displayname"]["value"] for r in rows] == [
            "ENTRY 0",
            "ENTRY 1",
            "ENTRY 2",
            "ENTRY 3",
        ]
        assert [r["passes"] for r in rows] == [True, False, True, False]
        assert [r["fields"]["organisation"]["value"] for r in rows] == ["", "ACME", "", "ACME"]
        assert set(result["errors"]) == {"fax"}
        assert all(r["fields"]["fax"]["error"] for r in rows)
        assert result["variables"]["displayname"] == "{{ displayname | upper }}"
        assert result["source_fields"] == PHONEBOOK_HEADER
        # Nothing was saved.
        assert _ok(admin.get(f"{url}/variables")) == saved
        assert _ok(admin.get(f"{url}/prefilter")) == only_acme

        # Without a body, the saved expressions are evaluated.
        plain = _ok(admin.post(f"{url}/evaluate"))
        assert len(plain["rows"]) == 5 and plain["errors"] == {}
        assert [r["passes"] for r in plain["rows"]] == [False, True, False, True, False]
        _error(admin.post(f"{url}/evaluate", json={"variables": {"nofield": "x"}}), 422, "nofield")
        _error(admin.post(f"{url}/evaluate", json={"limit": 0}), 422, "limit")
        _error(admin.post(f"{url}/evaluate", json={"limits": 3}), 422, "limits")
        _error(admin.post(f"{PROFILES}/nope/evaluate", json={}), 404)
        viewer_token = _viewer_token(admin)

    with server.client(viewer_token) as viewer:
        # Evaluating saves nothing, so a viewer may; changing the expressions is a write.
        assert len(_ok(viewer.post(f"{url}/evaluate", json={"limit": 2}))["rows"]) == 2
        assert _ok(viewer.get(f"{url}/variables")) == saved
        assert _ok(viewer.get(f"{url}/preview", params={"limit": 1}))["rows"]
        _error(viewer.put(f"{url}/variables", json=upper), 403)
        _error(viewer.put(f"{url}/prefilter", json={"prefilter": ""}), 403)
    with server.client() as anonymous:
        _error(anonymous.post(f"{url}/evaluate", json={}), 401)
        _error(anonymous.get(f"{url}/variables"), 401)
