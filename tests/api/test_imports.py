"""One-off import over HTTP, against the real `serve`: a dry run, an import, one that a
row refuses (422, each row in `errors`), and the template file."""

from __future__ import annotations

import io

import openpyxl

from tests.api.conftest import Server

IMPORT = "/api/v1/import"


def test_import_over_http(server: Server) -> None:
    with server.client(server.admin_token) as c:
        template = c.get(f"{IMPORT}/template/phonebook.xlsx")
        assert template.status_code == 200
        assert template.headers["content-type"].startswith("application/vnd.openxmlformats")
        wb = openpyxl.load_workbook(io.BytesIO(template.content))
        ws = wb.active
        assert ws is not None
        ws.append(["Eva Example", "+49 991 12399"])
        out = io.BytesIO()
        wb.save(out)
        book = out.getvalue()

        dry = c.post(f"{IMPORT}?target=phonebook&dry_run=true&filename=pb.xlsx", content=book)
        assert dry.status_code == 200, dry.text
        assert dry.json()["counts"]["created"] == 2 and dry.json()["applied"] is False

        done = c.post(
            f"{IMPORT}?target=phonebook",
            files={"file": ("pb.xlsx", book, "application/octet-stream")},
        )
        assert done.status_code == 200, done.text
        assert done.json()["applied"] is True and done.json()["message"] == (
            "imported 2 phonebook entries"
        )
        assert "Eva Example" in server.cli("phonebook", "list").stdout

        again = c.post(f"{IMPORT}?target=phonebook&filename=pb.xlsx", content=book)
        assert again.status_code == 422
        error = again.json()["error"]
        assert error["code"] == "import_refused" and error["message"].startswith(
            "nothing was imported"
        )
        assert {e["where"] for e in error["errors"]} == {"Phonebook, row 2", "Phonebook, row 3"}
        assert error["result"]["counts"]["conflicts"] == 2

        bad = c.post(f"{IMPORT}?target=phonebook&filename=x.xlsx", content=b"nope")
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "file"
        assert c.post(f"{IMPORT}?target=contacts", content=b"x").status_code == 422
        assert c.get(f"{IMPORT}/template/contacts.xlsx").status_code == 422
    viewer = server.cli("token", "create", "v", "--role", "viewer").stdout.strip()
    with server.client(viewer) as c:
        assert c.get(f"{IMPORT}/template/users.xlsx").status_code == 200
        assert c.post(f"{IMPORT}?target=users&filename=u.xlsx", content=b"x").status_code == 403
