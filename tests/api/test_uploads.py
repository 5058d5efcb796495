"""Uploading a profile's file over HTTP, against the real `serve`: a raw body and a
multipart form, what is shown after, and every way an upload can be refused."""

from __future__ import annotations

import hashlib
import io
import time
from typing import Any

import httpx
import openpyxl

from pbx_connector.service.uploads import MAX_UPLOAD_BYTES
from tests.api.conftest import Server
from tests.helpers import PHONEBOOK_HEADER

PROFILES = "/api/v1/profiles"
CSV = (",".join(PHONEBOOK_HEADER) + "\nMax Muster,+49 991 12345,,,,,,,\n").encode()


def _error(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["status"] == status and error["message"]
    if field is not None:
        assert error["field"] == field, error
    return error


def _book() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Phonebook"
    ws.append(PHONEBOOK_HEADER)
    ws.append(["Eva Example", 4999112399])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _profile(server: Server) -> None:
    server.cli("profile", "create", "pb", "--template", "csv-phonebook", "--set", "upload=yes")


def test_upload_a_raw_body_then_a_multipart_form(server: Server) -> None:
    _profile(server)
    with server.client(server.admin_token) as c:
        _error(c.get(f"{PROFILES}/pb/upload"), 404)
        r = c.put(f"{PROFILES}/pb/upload?filename=phonebook.csv", content=CSV)
        assert r.status_code == 200, r.text
        info = r.json()
        assert info["name"] == "phonebook.csv" and info["size"] == len(CSV)
        assert info["sha256"] == hashlib.sha256(CSV).hexdigest() and info["format"] == "csv"
        shown = c.get(f"{PROFILES}/pb/upload").json()
        assert {k: shown[k] for k in ("name", "size", "sha256", "format")} == {
            k: info[k] for k in ("name", "size", "sha256", "format")
        }
        run = c.post(f"{PROFILES}/pb/runs", json={"dry_run": True})
        assert run.status_code == 202, run.text
        for _ in range(100):
            report = c.get(f"/api/v1/runs/{run.json()['id']}").json()
            if report["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        assert report["status"] == "ok" and report["counts"]["created"] == 1, report

        book = _book()
        r = c.put(
            f"{PROFILES}/pb/upload",
            files={"file": ("Phonebook 2024.xlsx", book, "application/octet-stream")},
        )
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "Phonebook 2024.xlsx" and r.json()["format"] == "xlsx"
        profile = c.get(f"{PROFILES}/pb").json()
        assert profile["settings"]["format"] == "xlsx" and profile["settings"]["upload"] == "yes"

        r = c.put(
            f"{PROFILES}/pb/upload",
            content=CSV,
            headers={"Content-Disposition": 'attachment; filename="again.csv"'},
        )
        assert r.json()["name"] == "again.csv" and r.json()["format"] == "csv"


def test_uploads_that_are_refused(server: Server) -> None:
    _profile(server)
    with server.client(server.admin_token) as c:
        error = _error(c.put(f"{PROFILES}/pb/upload?filename=x.xlsx", content=b"nope"), 422, "file")
        assert "not an xlsx workbook" in error["message"]
        _error(c.put(f"{PROFILES}/pb/upload?filename=x.csv", content=b""), 422, "file")
        _error(c.put(f"{PROFILES}/pb/upload", files={"other": ("x.csv", CSV)}), 422, "file")
        _error(c.put(f"{PROFILES}/nope/upload?filename=x.csv", content=CSV), 404)
        _error(c.get(f"{PROFILES}/pb/upload"), 404)
        # Over the limit: 413, whether the length is declared or the body just goes on.
        huge = b"x" * (MAX_UPLOAD_BYTES + 1)
        error = _error(c.put(f"{PROFILES}/pb/upload?filename=x.csv", content=huge), 413, "file")
        assert "larger than 64 MiB" in error["message"]
        streamed = c.put(f"{PROFILES}/pb/upload?filename=x.csv", content=iter([huge]))
        _error(streamed, 413, "file")
        _error(c.get(f"{PROFILES}/pb/upload"), 404)  # nothing was kept
    with server.client() as anonymous:
        _error(anonymous.put(f"{PROFILES}/pb/upload", content=CSV), 401)
        _error(anonymous.get(f"{PROFILES}/pb/upload"), 401)
    viewer = server.cli("token", "create", "v", "--role", "viewer").stdout.strip()
    with server.client(viewer) as c:
        _error(c.put(f"{PROFILES}/pb/upload?filename=x.csv", content=CSV), 403)
