"""The Phone system page over HTTP against a real `serve` (SQLite and PostgreSQL): a number
looked up as the PBX gets it (private phonebook first, the record linked, unknown and
invalid numbers), viewers may use it, and the URLs of this server for the PBX and each
desk-phone vendor."""

from __future__ import annotations

import re
from html import unescape

import httpx

from tests.api.conftest import Server
from tests.web.conftest import VIEWER_PASSWORD, add_user, sign_in


def _text(html: str, css_class: str) -> str:
    match = re.search(rf'class="{css_class}">(.*?)</', html, re.S)
    assert match, css_class
    return unescape(match[1]).strip()


def _result(html: str) -> str:
    match = re.search(r'<div class="adm-result" id="lookup-result"[^>]*>(.*?)</div>', html, re.S)
    assert match, html
    return unescape(re.sub(r"<[^>]+>", "", match[1]))


def test_a_number_is_looked_up_as_the_pbx_gets_it(web: Server) -> None:
    web.cli("users", "add", "username=alice", "displayname=Alice Liddell", "extension=201")
    web.cli("phonebook", "add", "displayname=Müller & Söhne <GmbH>", "phone=+49 991 12345")
    web.cli("phonebook", "add", "displayname=Mum", "phone=+49 991 12345", "owner=alice")
    add_user(web, "vera", VIEWER_PASSWORD, roles="viewer")
    with httpx.Client(base_url=web.url, timeout=30) as browser:
        sign_in(browser, "vera", VIEWER_PASSWORD)  # a viewer may look up too
        empty = browser.get("/pbx")
        assert empty.status_code == 200
        assert 'aria-current="page">PBX<' in empty.text
        assert "lookup-result" not in empty.text

        found = browser.get("/pbx", params={"number": "0991 12345"})
        assert found.status_code == 200
        assert _text(found.text, "lookup-name") == "Müller & Söhne <GmbH>"
        assert "Müller &amp; Söhne &lt;GmbH&gt;" in found.text
        assert _text(found.text, "lookup-source") == "the global phonebook"
        assert re.search(r'<a href="/phonebook/\d+">phonebook \d+, phone', found.text)
        assert "matched +4999112345 by the whole number" in found.text

        private = browser.get("/pbx", params={"number": "+49 991 12345", "user": "201"})
        assert _text(private.text, "lookup-name") == "Mum"
        assert _text(private.text, "lookup-source") == "the private phonebook of alice"
        assert 'value="201"' in private.text  # the form keeps what was asked

        user = browser.get("/pbx", params={"number": "201"})
        assert _text(user.text, "lookup-name") == "Alice Liddell"
        assert re.search(r'<a href="/users/\d+">users \d+, extension 201', user.text)

        unknown = browser.get("/pbx", params={"number": "+1 555 0100"})
        assert unknown.status_code == 200
        assert "no name for the number '+1 555 0100'" in _result(unknown.text)
        assert "shows the number alone" in _result(unknown.text)

        invalid = browser.get("/pbx", params={"number": "1" * 80})
        assert invalid.status_code == 422
        assert "longer than 64 characters" in invalid.text
        assert 'aria-invalid="true"' in invalid.text


def test_the_urls_of_this_server_for_the_pbx_and_each_phone(web: Server) -> None:
    with httpx.Client(base_url=web.url, timeout=30) as browser:
        sign_in(browser)
        html = browser.get("/pbx").text
    urls = [unescape(u) for u in re.findall(r"<code>([^<]*\?token=TOKEN[^<]*)</code>", html)]
    assert f"{web.url}/lookup.txt?token=TOKEN&number=CALLER&user=CALLED" in urls
    for vendor in ("yealink", "snom", "grandstream", "cisco", "fanvil", "gigaset", "polycom"):
        assert f"{web.url}/directory/{vendor}.xml?token=TOKEN" in urls
    searchable = {u.split("/directory/")[1].split("/")[0] for u in urls if "search.xml" in u}
    assert searchable == {"cisco", "fanvil", "snom"}
    assert f"{web.url}/directory/contacts.vcf?token=TOKEN" in urls
    assert "No client is let in without a token" in html
    # Every URL the page gives answers (with a real token in place of TOKEN).
    web.cli("users", "add", "username=desk", "extension=101")
    token = web.cli("token", "create", "pbx", "--role", "lookup").stdout.strip()
    for url in urls:
        asked = url.replace("TOKEN", token).replace("CALLER", "101").replace("CALLED", "")
        assert httpx.get(asked, timeout=30).status_code == 200, url
