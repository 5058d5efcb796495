"""The Import page over HTTP against a real `serve`: the form, a dry run, an import, an
import that a row refuses (its cell shown), the template files, and who may import."""

from __future__ import annotations

import io
from html import unescape

import httpx
import openpyxl

from tests.api.conftest import Server
from tests.web.conftest import VIEWER_PASSWORD, add_user, csrf_of, sign_in


def _book(*rows: list[object]) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Users"
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _post(
    client: httpx.Client, web: Server, content: bytes, name: str, **fields: str
) -> httpx.Response:
    return client.post(
        "/import",
        data={"csrf_token": csrf_of(client), **fields},
        files={"file": (name, content, "application/octet-stream")},
        headers={"Origin": web.url},
    )


def test_the_page_imports_a_file_after_a_dry_run(web: Server) -> None:
    data = _book(
        ["username", "displayname", "extension"],
        ["max", "Max Muster", 4711],
        ["eva", "Eva Example", 4712],
    )
    with httpx.Client(base_url=web.url, timeout=60) as client:
        sign_in(client)
        form = client.get("/import")
        assert form.status_code == 200
        for needed in (
            'name="file"',
            'name="target"',
            'name="dry_run"',
            "/import/template/users.xlsx",
        ):
            assert needed in form.text

        dry = _post(client, web, data, "staff.xlsx", target="users", dry_run="on")
        assert dry.status_code == 200, dry.text
        text = unescape(dry.text)
        assert "Dry run: staff.xlsx" in text and "dry run: would import 2 users" in text
        assert "max" not in web.cli("users", "list").stdout.split()

        done = _post(client, web, data, "staff.xlsx", target="users")
        assert done.status_code == 200
        assert "imported 2 users" in unescape(done.text)
        listed = web.cli("users", "list").stdout
        assert "Max Muster" in listed and "4711" in listed


def test_a_refused_import_shows_each_cell(web: Server) -> None:
    data = _book(
        ["username", "displayname", "email"],
        ["max", "Max", "max@example.com"],
        ["eva", "Eva", "not-an-address"],
    )
    with httpx.Client(base_url=web.url, timeout=60) as client:
        sign_in(client)
        refused = _post(client, web, data, "staff.xlsx", target="users")
        assert refused.status_code == 422
        text = unescape(refused.text)
        assert "Not imported: staff.xlsx" in text and "nothing was imported" in text
        assert "Users!C3" in text and ">email<" in text
        assert "max@example.com" not in web.cli("users", "list").stdout

        wrong = _post(client, web, b"not a workbook", "staff.xlsx", target="users")
        assert wrong.status_code == 422 and "not an xlsx workbook" in unescape(wrong.text)
        none = client.post(
            "/import",
            data={"csrf_token": csrf_of(client), "target": "users"},
            headers={"Origin": web.url},
        )
        assert none.status_code == 422 and "choose a file" in none.text


def test_template_files_and_who_may_import(web: Server) -> None:
    add_user(web, "vera", VIEWER_PASSWORD, roles="viewer")
    with httpx.Client(base_url=web.url, timeout=60) as client:
        assert client.get("/import", follow_redirects=False).status_code == 303
        sign_in(client, "vera", VIEWER_PASSWORD)
        page = client.get("/import")
        assert page.status_code == 200 and "Importing needs the admin role." in page.text
        template = client.get("/import/template/speeddials.xlsx")
        assert template.status_code == 200
        assert "speeddials.xlsx" in template.headers["content-disposition"]
        wb = openpyxl.load_workbook(io.BytesIO(template.content))
        assert [c.value for c in next(wb.active.iter_rows())] == ["code", "number", "displayname"]  # type: ignore[union-attr]
        refused = _post(client, web, _book(["code"]), "x.xlsx", target="speeddials")
        assert refused.status_code == 403
        assert client.get("/import/template/contacts.xlsx").status_code == 422
