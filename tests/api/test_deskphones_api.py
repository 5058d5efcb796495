"""Desk-phone directories over HTTP against a real `serve`: every vendor's URL answers in
its format with the right content type and the entries, search and paging (Cisco's Next
soft key followed as a phone would, Gigaset's first/count), `?user=` adds that user's
private entries, the exports, an unknown vendor (404), no credentials (401), a token in
the URL, and no query string in the server's log."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Server
from tests.helpers import PHONEBOOK_HEADER, phonebook_row, write_csv

HOSTILE = "Müller & Söhne <GmbH>"
XML = "text/xml; charset=utf-8"
VENDORS = ["yealink", "snom", "grandstream", "cisco", "fanvil", "gigaset", "polycom"]
#: Where each vendor's document lists its entries' names.
NAMES = {
    "yealink": "DirectoryEntry/Name",
    "snom": "MenuItem",
    "grandstream": "Contact/LastName",
    "cisco": "DirectoryEntry/Name",
    "fanvil": "DirectoryEntry/Name",
    "gigaset": "entry/ln",
    "polycom": "item_list/item/ln",
}


def names(vendor: str, response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XML
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(response.content)
    found = root.findall(NAMES[vendor])
    if vendor == "fanvil" and root.tag == "FanvilIPPhoneDirectory":  # search results
        found = root.findall("MenuItem/Prompt")
    if vendor == "snom":
        return [item.get("name") or "" for item in found]
    return [item.text or "" for item in found]


def add(server: Server, target: str, *fields: str) -> None:
    server.cli(target, "add", *fields)


def run_cli_status(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    """A command that may fail, with its exit status and output."""
    return subprocess.run(
        [sys.executable, "-m", "pbx_connector.cli", "--db", server.db, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PBX_CONNECTOR_HOME": str(server.home)},
        timeout=120,
    )


@pytest.fixture
def directory(server: Server, tmp_path: Path) -> Server:
    """A global phonebook of 40 people and a hostile name, a user with a private entry,
    a speed dial."""
    rows = [phonebook_row(f"Person {n:02d}", f"+49 30 {1000 + n}") for n in range(40)]
    rows.append(phonebook_row(HOSTILE, "+49 991 12345", mobile="+49 170 12345"))
    server.cli("import", str(write_csv(tmp_path / "book.csv", PHONEBOOK_HEADER, rows)),
               "--target", "phonebook")  # fmt: skip
    add(server, "users", "username=alice", "displayname=Alice Liddell", "extension=201")
    add(server, "phonebook", "displayname=Alice's dentist", "phone=+49 991 777", "owner=alice")
    add(server, "speeddials", "code=*12", "number=+49 991 888", "displayname=Pizza")
    return server


def test_each_vendor_answers_in_its_format(directory: Server) -> None:
    with directory.client(directory.admin_token) as client:
        for vendor in VENDORS:
            shown = names(vendor, client.get(f"/directory/{vendor}.xml", params={"q": "müller"}))
            assert shown and all(HOSTILE in name for name in shown), (vendor, shown)
            whole = names(vendor, client.get(f"/directory/{vendor}.xml"))
            assert len(whole) >= {"snom": 42, "cisco": 32, "fanvil": 41}.get(vendor, 41), vendor

        grandstream = client.get("/directory/grandstream/phonebook.xml")
        assert names("grandstream", grandstream) == names(
            "grandstream", client.get("/directory/grandstream.xml")
        )

        vcf = client.get("/directory/contacts.vcf", params={"q": "müller"})
        assert vcf.status_code == 200, vcf.text
        assert vcf.headers["content-type"] == "text/vcard; charset=utf-8"
        assert vcf.text.count("BEGIN:VCARD") == 1
        assert "FN:Müller & Söhne <GmbH>\r\n" in vcf.text
        assert "TEL;TYPE=CELL,VOICE:+4917012345\r\n" in vcf.text

        exported = client.get("/directory/contacts.csv", params={"speeddials": "1"})
        assert exported.headers["content-type"] == "text/csv; charset=utf-8"
        rows = list(csv.DictReader(io.StringIO(exported.text, newline="")))
        assert len(rows) == 42
        assert {"displayname": "Pizza", "other": "+49991888"}.items() <= rows[-1].items()

        unknown = client.get("/directory/acme.xml")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["code"] == "not_found"
        assert "yealink" in unknown.json()["error"]["message"]

    # No credentials: refused, on every route.
    for path in ["/directory/yealink.xml", "/directory/contacts.vcf", "/directory/gigaset.xml"]:
        assert httpx.get(directory.url + path).status_code == 401


def test_search_and_paging(directory: Server) -> None:
    with directory.client(directory.admin_token) as client:
        # Cisco: 32 entries a page and a Next soft key the phone follows.
        first = client.get("/directory/cisco.xml", params={"q": "person"})
        assert len(names("cisco", first)) == 32
        root = ET.fromstring(first.content)
        assert root.findtext("Prompt") == "1-32 of 40"
        keys = {k.findtext("Name"): k.findtext("URL") or "" for k in root.findall("SoftKeyItem")}
        following = keys["Next"]
        assert following.startswith(directory.url + "/directory/cisco.xml?")
        second = client.get(following)
        assert names("cisco", second) == [f"Person {n:02d}" for n in range(32, 40)]
        assert "Next" not in {k.findtext("Name") for k in ET.fromstring(second.content)}

        # Snom: a search, on one page (up to 100 lines).
        snom = client.get("/directory/snom.xml", params={"q": "person 1"})
        assert names("snom", snom) == [f"Person {n:02d}" for n in range(10, 20)]

        # Fanvil: with a search, results of 16 a page.
        fanvil = client.get("/directory/fanvil.xml", params={"q": "person", "offset": "32"})
        assert names("fanvil", fanvil) == [f"Person {n:02d}" for n in range(32, 40)]

        # Gigaset: the phone's own search fields and first/count, consistent counters.
        gigaset = client.get(
            "/directory/gigaset.xml",
            params={"command": "get_list", "type": "pb", "ln": "Person*", "fn": "*",
                    "hm": "*", "first": "11", "count": "10"},
        )  # fmt: skip
        answer = ET.fromstring(gigaset.content)
        assert answer.attrib == {
            "response": "get_list", "type": "pb", "total": "40", "first": "11", "last": "20",
        }  # fmt: skip
        assert [e.findtext("ln") for e in answer.findall("entry")] == [
            f"Person {n:02d}" for n in range(10, 20)
        ]
        reverse = client.get("/directory/gigaset.xml", params={"hm": "+4999112345"})
        assert names("gigaset", reverse) == [HOSTILE, HOSTILE]  # work and mobile
        assert ET.fromstring(reverse.content).findtext("entry/hm") == "+4999112345"
        nothing = ET.fromstring(client.get("/directory/gigaset.xml", params={"hm": "0815"}).content)
        assert nothing.attrib == {"response": "get_list", "type": "pb", "notfound": "hm",
                                  "total": "0"}  # fmt: skip

        # The search forms: the phone asks for the text and opens the directory with it.
        form = ET.fromstring(client.get("/directory/cisco/search.xml?user=alice").content)
        assert form.tag == "CiscoIPPhoneInput"
        target = form.findtext("URL") or ""
        assert target == directory.url + "/directory/cisco.xml?user=alice"
        assert names("cisco", client.get(target + "&q=dentist")) == ["Alice's dentist"]
        snom_form = ET.fromstring(client.get("/directory/snom/search.xml").content)
        snom_target = (snom_form.findtext("Url") or "").replace("__X__", "person 3")
        assert names("snom", client.get(snom_target)) == [f"Person {n:02d}" for n in range(30, 40)]
        assert client.get("/directory/yealink/search.xml").status_code == 404

        # Yealink: the search a phone puts in place of #SEARCH.
        assert names(
            "yealink", client.get("/directory/yealink.xml", params={"q": "Person 07"})
        ) == ["Person 07"]
        too_long = client.get("/directory/yealink.xml", params={"q": "x" * 300})
        assert too_long.status_code == 422


def test_a_user_s_private_entries(directory: Server) -> None:
    with directory.client(directory.admin_token) as client:
        plain = names("yealink", client.get("/directory/yealink.xml"))
        assert "Alice's dentist" not in plain
        private = names("yealink", client.get("/directory/yealink.xml", params={"user": "alice"}))
        assert private[0] == "Alice's dentist"
        assert private[1:] == plain
        both = names(
            "yealink",
            client.get(
                "/directory/yealink.xml",
                params={"user": "alice", "users": "true", "speeddials": "true"},
            ),
        )
        assert both[-2:] == ["Alice Liddell", "Pizza"]
        vcf = client.get("/directory/contacts.vcf", params={"user": "alice", "q": "dentist"})
        assert "FN:Alice's dentist\r\n" in vcf.text
        nobody = client.get("/directory/yealink.xml", params={"user": "nobody"})
        assert nobody.status_code == 404


def test_a_token_in_the_url_and_no_query_string_in_the_log(
    directory: Server, tmp_path: Path
) -> None:
    # A phone that cannot send headers puts the token in the URL, and keeps it on Next:
    # a token of the role lookup, which may read the directories and nothing else.
    token = directory.cli("token", "create", "desk phones", "--role", "lookup").stdout.strip()
    assert (
        httpx.get(f"{directory.url}/api/v1/phonebook", params={"token": token}).status_code == 401
    )
    first = httpx.get(
        f"{directory.url}/directory/cisco.xml",
        params={"token": token, "q": "secret-search-person"},
    )
    assert first.status_code == 200, first.text
    response = httpx.get(
        f"{directory.url}/directory/cisco.xml", params={"token": token, "q": "person"}
    )
    keys = ET.fromstring(response.content).findall("SoftKeyItem")
    following = next(k.findtext("URL") or "" for k in keys if k.findtext("Name") == "Next")
    assert f"token={token}" in following
    assert len(names("cisco", httpx.get(following))) == 8
    assert (
        httpx.get(f"{directory.url}/directory/cisco.xml", params={"token": "wrong"}).status_code
        == 401
    )

    # Phones let in by their address need no token.
    assert httpx.get(f"{directory.url}/directory/yealink.xml").status_code == 401
    directory.cli("config", "lookup_clients=127.0.0.0/8")
    assert len(names("yealink", httpx.get(f"{directory.url}/directory/yealink.xml"))) == 41

    log = (tmp_path / "serve.log").read_text()
    assert token not in log
    assert "secret-search-person" not in log


def test_a_phone_token_in_the_url_opens_its_own_users_directory_only(directory: Server) -> None:
    # bob has a private entry too; alice's phone must never show it.
    add(directory, "users", "username=bob", "displayname=Bob Brown", "extension=202")
    add(directory, "phonebook", "displayname=Bob's bookmaker", "phone=+49 991 666", "owner=bob")
    refused = run_cli_status(directory, "token", "create", "desk", "--role", "phone")
    assert refused.returncode != 0
    assert "name that user as its owner" in refused.stderr
    created = directory.cli("token", "create", "alice desk", "--role", "phone", "--owner", "alice")
    token = created.stdout.strip()
    assert "directory/yealink.xml?token=" in created.stderr

    def get(path: str, **params: str) -> httpx.Response:
        return httpx.get(f"{directory.url}{path}", params={"token": token, **params})

    shown = names("yealink", get("/directory/yealink.xml"))
    assert shown[0] == "Alice's dentist"
    assert "Bob's bookmaker" not in shown
    assert names("yealink", get("/directory/yealink.xml", user="201")) == shown
    for other in ("bob", "202"):
        denied = get("/directory/yealink.xml", user=other)
        assert denied.status_code == 403, denied.text
        assert "only its own user's" in denied.json()["error"]["message"]
    assert "Bob's bookmaker" not in get("/directory/contacts.vcf").text
    assert get("/lookup.txt", number="0991 777").text == "Alice's dentist"
    assert get("/lookup.txt", number="0991 666").text == ""
    assert get("/lookup.txt", number="0991 666", user="bob").status_code == 403
    # Nothing but what a phone asks: no API reads, no password checks.
    assert get("/api/v1/phonebook").status_code == 401  # the API takes no ?token=
    headers = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{directory.url}/api/v1/phonebook", headers=headers).status_code == 403
    check = httpx.post(
        f"{directory.url}/api/v1/auth/check",
        headers=headers,
        json={"username": "alice", "password": "anything-at-all"},
    )
    assert check.status_code == 403
