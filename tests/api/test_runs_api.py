"""Runs over HTTP: start one (202, in the background), follow it, list them; the error
shape and the statuses of every way a request can fail; tokens and roles."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine

from pbx_connector.store import runs as run_store
from pbx_connector.store.db import make_engine, resolve_url
from tests.api.conftest import Server
from tests.helpers import PHONEBOOK_HEADER, phonebook_row, write_csv


def _profile(server: Server, tmp_path: Path, rows: int = 25) -> None:
    data = [phonebook_row(f"Entry {n}", f"+49 991 {1000 + n}") for n in range(rows)]
    path = write_csv(tmp_path / "pb.csv", PHONEBOOK_HEADER, data)
    server.cli("profile", "create", "pb", "-t", "csv-phonebook", "--set", f"path={path}")


def _error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"status", "code", "message", "field", "line", "errors"} <= set(error)
    assert error["status"] == status and error["message"]
    if code is not None:
        assert error["code"] == code, error
    assert "Traceback" not in response.text
    return dict(error)


def _wait(client: httpx.Client, run_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        run = client.get(f"/api/v1/runs/{run_id}").json()
        if run["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return dict(run)
        time.sleep(0.1)


def test_a_run_starts_in_the_background_and_can_be_followed(server: Server, tmp_path: Path) -> None:
    _profile(server, tmp_path)
    with server.client(server.admin_token) as client:
        started = client.post("/api/v1/profiles/pb/runs", json={"dry_run": False})
        assert started.status_code == 202, started.text
        run = started.json()
        assert started.headers["location"] == f"/api/v1/runs/{run['id']}"
        assert run["status"] == "queued" and run["trigger"] == "api"
        done = _wait(client, run["id"])
        assert done["status"] == "ok" and done["applied"] and done["counts"]["created"] == 25
        listed = client.get("/api/v1/runs", params={"limit": 1}).json()
        assert listed["total"] == 1 and listed["items"][0]["id"] == run["id"]
    listed_cli = server.cli("phonebook", "list", "--json").stdout
    assert listed_cli.count('"displayname"') == 25


def test_a_second_run_of_a_running_profile_is_409_naming_the_running_run(
    server: Server, tmp_path: Path
) -> None:
    _profile(server, tmp_path)
    engine = make_engine(resolve_url(server.db))
    try:
        # A run of this (live) test process holds the profile.
        holder = run_store.begin_run(engine, 1, "pb", dry_run=False, trigger="test")
        with server.client(server.admin_token) as client:
            refused = client.post("/api/v1/profiles/pb/runs", json={})
            error = _error(refused, 409, "run_locked")
            assert error["running_run_id"] == holder
    finally:
        engine.dispose()


def test_statuses_of_bad_requests(server: Server, tmp_path: Path) -> None:
    _profile(server, tmp_path)
    with server.client(server.admin_token) as client:
        _error(client.post("/api/v1/profiles/nope/runs", json={}), 404, "not_found")
        invalid = _error(client.post("/api/v1/profiles/pb/runs", json={"dry_run": "maybe"}), 422)
        assert invalid["errors"][0]["field"] == "dry_run"
        unknown = _error(client.post("/api/v1/profiles/pb/runs", json={"dryrun": True}), 422)
        assert unknown["errors"][0]["field"] == "dryrun"
        _error(client.get("/api/v1/runs/abc"), 422, "invalid")
        _error(client.get("/api/v1/runs/99"), 404, "not_found")
        _error(client.get("/api/v1/runs/99999999999999999999"), 422)
        _error(client.get("/api/v1/runs", params={"limit": 100000}), 422)
        _error(client.get("/api/v1/no-such-route"), 404)
        _error(client.delete("/api/v1/runs"), 405)
        openapi = client.get("/api/v1/openapi.json").json()
        assert "/api/v1/runs/{run_id}" in openapi["paths"]
        # No interactive page that would load scripts from a CDN.
        assert client.get("/api/docs").status_code == 404
        assert client.get("/docs").status_code == 404


def test_tokens_roles_and_revocation(server: Server, tmp_path: Path) -> None:
    _profile(server, tmp_path)
    with server.client() as anonymous:
        missing = anonymous.get("/api/v1/runs")
        _error(missing, 401, "unauthenticated")
        assert missing.headers["www-authenticate"] == "Bearer"
    with server.client("pbxc_not-a-real-token") as bogus:
        _error(bogus.get("/api/v1/runs"), 401)
    with server.client(server.admin_token) as admin:
        assert admin.get("/api/v1/me").json()["role"] == "admin"
        created = admin.post("/api/v1/tokens", json={"name": "wallboard", "role": "viewer"})
        assert created.status_code == 201
        viewer_token = created.json()["token"]
        assert created.headers["location"] == f"/api/v1/tokens/{created.json()['view']['id']}"
        listed = admin.get("/api/v1/tokens").json()
        assert listed["total"] == 2 and viewer_token not in str(listed)
        _error(admin.post("/api/v1/tokens", json={"name": "x", "role": "root"}), 422)
    with server.client(viewer_token) as viewer:
        assert viewer.get("/api/v1/runs").status_code == 200
        assert viewer.get("/api/v1/me").json() == {
            "username": "admin",
            "role": "viewer",
            "token_id": 2,
        }
        _error(viewer.post("/api/v1/profiles/pb/runs", json={}), 403, "permission_denied")
        _error(viewer.get("/api/v1/tokens"), 403)
    with server.client(server.admin_token) as admin:
        assert admin.delete("/api/v1/tokens/2").status_code == 204
        _error(admin.delete("/api/v1/tokens/77"), 404)
    with server.client(viewer_token) as revoked:
        _error(revoked.get("/api/v1/runs"), 401)


__all__ = ["create_engine"]
