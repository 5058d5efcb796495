"""Which entries a desk-phone directory holds, against a real store (SQLite and
PostgreSQL): the global phonebook, a user's private one first, users and speed dials when
asked for, the core's search, names sorted within each part, numbers in E.164, the window
of a phone's directory, and exports that hold every match."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import Engine

from pbx_connector.errors import ConfigError, NotFoundError
from pbx_connector.service import App
from pbx_connector.service import deskphones as service
from pbx_connector.service.deskphones import DirectoryQuery, PhonePage, phone_search


@pytest.fixture
def app(engine: Engine) -> App:
    core = App(engine)
    add = core.records.add
    add("phonebook", {"displayname": "Zoe Global", "phone": "+49 991 1001"})
    add(
        "phonebook",
        {
            "displayname": "Müller & Söhne <GmbH>",
            "phone": "0991 2002",
            "mobile": "+49 170 2002",
            "homephone": "+49 991 2003",
            "fax": "+49 991 2009",
            "organisation": "Müller & Söhne",
        },
    )
    add("phonebook", {"displayname": "Only e-mail", "email": "x@example.test"})
    add("users", {"username": "alice", "displayname": "Alice A", "extension": "201"})
    add("users", {"username": "bob", "displayname": "Bob B", "phone": "+49 991 3003"})
    add("users", {"username": "carl", "displayname": "Carl C", "extension": "203", "enabled": "no"})
    add("phonebook", {"displayname": "Alice's dentist", "phone": "+49 991 4004", "owner": "alice"})
    add("phonebook", {"displayname": "Bob's friend", "phone": "+49 991 5005", "owner": "bob"})
    add("speeddials", {"code": "*12", "number": "+49 991 6006", "displayname": "Pizza"})
    add("speeddials", {"code": "*13", "number": "+49 991 7007"})
    return core


def names(app: App, query: DirectoryQuery) -> list[str]:
    entries, _ = app.deskphones.entries(query)
    return [e.name for e in entries]


def test_the_global_phonebook_sorted_by_name_with_dialable_numbers(app: App) -> None:
    entries, complete = app.deskphones.entries(DirectoryQuery())
    assert complete
    assert [e.name for e in entries] == ["Müller & Söhne <GmbH>", "Zoe Global"]
    muller = entries[0]
    assert [(n.kind, n.value) for n in muller.numbers] == [
        ("work", "+499912002"),  # stored as 0991 2002, shown in E.164; no fax
        ("mobile", "+491702002"),
        ("home", "+499912003"),
    ]
    assert muller.organisation == "Müller & Söhne"


def test_a_user_s_private_phonebook_comes_first(app: App) -> None:
    assert names(app, DirectoryQuery(user="alice")) == [
        "Alice's dentist",
        "Müller & Söhne <GmbH>",
        "Zoe Global",
    ]
    assert "Bob's friend" not in names(app, DirectoryQuery(user="ALICE"))
    bob = app.records.get("users", "bob")
    assert names(app, DirectoryQuery(user=str(bob.id)))[0] == "Bob's friend"
    with pytest.raises(NotFoundError, match="nobody"):
        app.deskphones.entries(DirectoryQuery(user="nobody"))


def test_users_and_speed_dials_when_asked_for(app: App) -> None:
    entries, _ = app.deskphones.entries(DirectoryQuery(users=True, speeddials=True))
    shown = [(e.name, [(n.kind, n.value) for n in e.numbers]) for e in entries]
    assert shown == [
        ("Müller & Söhne <GmbH>", [("work", "+499912002"), ("mobile", "+491702002"),
                                   ("home", "+499912003")]),
        ("Zoe Global", [("work", "+499911001")]),
        ("Alice A", [("work", "201")]),  # the extension
        ("Bob B", [("work", "+499913003")]),  # no extension: the direct number
        # Carl is disabled; the speed dial without a name is named by its code.
        ("*13", [("other", "+499917007")]),
        ("Pizza", [("other", "+499916006")]),
    ]  # fmt: skip


def test_a_search_uses_the_core_s_record_search(app: App) -> None:
    assert names(app, DirectoryQuery(search="mül")) == ["Müller & Söhne <GmbH>"]
    assert names(app, DirectoryQuery(search="0991 1001")) == ["Zoe Global"]
    assert names(app, DirectoryQuery(search="pizza", speeddials=True)) == ["Pizza"]
    assert names(app, DirectoryQuery(search="dentist")) == []
    assert names(app, DirectoryQuery(search="dentist", user="alice")) == ["Alice's dentist"]
    with pytest.raises(ConfigError):
        app.deskphones.entries(DirectoryQuery(search="x" * 300))


def test_unknown_vendor(app: App) -> None:
    with pytest.raises(NotFoundError, match="yealink"):
        app.deskphones.render("acme", DirectoryQuery())
    assert app.deskphones.vendors() == [
        "cisco", "fanvil", "gigaset", "grandstream", "polycom", "snom", "yealink",
    ]  # fmt: skip


def test_each_vendor_renders_the_directory(app: App) -> None:
    for vendor in app.deskphones.vendors():
        rendered = app.deskphones.render(vendor, DirectoryQuery(user="alice", users=True))
        assert rendered.media_type == "text/xml; charset=utf-8"
        text = rendered.content.decode("utf-8")
        ET.fromstring(rendered.content)
        assert "Müller &amp; Söhne" in text
        assert "+499914004" in text  # alice's private entry


def test_the_window_of_a_phone_s_directory(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "WINDOW", 3)
    entries, complete = app.deskphones.entries(DirectoryQuery(user="alice", users=True))
    # Three records: the private entry and the first two of the global phonebook (the
    # one without a number counts); nothing of the users.
    assert [e.name for e in entries] == ["Alice's dentist", "Müller & Söhne <GmbH>", "Zoe Global"]
    assert not complete
    rendered = app.deskphones.render("cisco", DirectoryQuery(user="alice", users=True))
    assert ET.fromstring(rendered.content).findtext("Prompt") == "1-5 of 5+"


def test_search_forms(app: App) -> None:
    url = "http://pbx.example:8080/directory/cisco.xml?token=t"
    form = app.deskphones.search_screen("cisco", url)
    assert form.media_type == "text/xml; charset=utf-8"
    assert ET.fromstring(form.content).findtext("URL") == url
    with pytest.raises(NotFoundError, match="cisco, fanvil, snom"):
        app.deskphones.search_screen("yealink", url)
    with pytest.raises(NotFoundError, match="vendors"):
        app.deskphones.search_screen("acme", url)


def test_paging_of_a_phone(app: App) -> None:
    asked = PhonePage(offset=3, count=2, list_type="pb", searched="ln")
    root = ET.fromstring(app.deskphones.render("gigaset", DirectoryQuery(), asked).content)
    assert (root.get("total"), root.get("first"), root.get("last")) == ("4", "4", "4")


def test_exports_hold_every_match_in_batches(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "EXPORT_BATCH", 2)
    for n in range(5):
        app.records.add("phonebook", {"displayname": f"Extra {n}", "phone": f"+49 30 {n}000"})
    exported = app.deskphones.export("csv", DirectoryQuery(users=True, speeddials=True))
    assert exported.media_type == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.parts).decode(), newline="")))
    assert len(rows) == 2 + 5 + 2 + 2  # phonebook with numbers, extras, users, speed dials
    vcf = b"".join(app.deskphones.export("vcf", DirectoryQuery(search="extra")).parts)
    assert vcf.count(b"BEGIN:VCARD") == 5
    with pytest.raises(NotFoundError):
        app.deskphones.export("xlsx", DirectoryQuery())


def test_an_export_is_refused_before_any_byte(app: App) -> None:
    with pytest.raises(NotFoundError):
        app.deskphones.export("csv", DirectoryQuery(user="nobody"))
    with pytest.raises(ConfigError):
        app.deskphones.export("vcf", DirectoryQuery(search="x" * 300))


def test_a_phone_s_search_fields() -> None:
    assert phone_search("mül", {"hm": "+49"}) == ("mül", "ln")
    assert phone_search(None, {"hm": "*", "ln": "Mül*", "fn": "*"}) == ("Mül", "ln")
    assert phone_search(None, {"hm": "+4999112345", "ln": "*"}) == ("+4999112345", "hm")
    assert phone_search(None, {"fn": "Jo*"}) == ("Jo", "fn")
    assert phone_search(None, {"hm": "*", "ln": "*"}) == (None, "ln")
