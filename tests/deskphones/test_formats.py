"""Every desk-phone format checked against the structure its vendor documents (see
docs/pbx.md and the vendors' remote-phonebook guides): the root and required elements,
the limits (Cisco 32 a page with a Next soft key, Snom 100, Fanvil 16, Grandstream 1000
contacts, Polycom 40-byte names, unique numbers and 200 KB, Gigaset's consistent
counters), escaping of hostile names, and a declared encoding that matches the bytes.
Each document is read back with the standard library's parser, as a phone would."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pbx_connector.deskphones import EXPORTS, PHONES, Entry, Number, View
from pbx_connector.deskphones import model as xmlmodel
from pbx_connector.deskphones.vcard import FOLD_AT

HOSTILE = [
    "Müller & Söhne <GmbH>",
    "O'Brien",
    'Say "cheese" & <smile>',
    "Emoji 😀📞 Ünïcödé",
    "A" * 40 + "é" * 40,  # 80 characters, 120 bytes
]
VENDORS = ["yealink", "snom", "grandstream", "cisco", "fanvil", "gigaset", "polycom"]
#: A raw `&` that is not the start of an entity or character reference.
RAW_AMPERSAND = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)")
DECLARATION = re.compile(rb'^<\?xml version="1\.0" encoding="([A-Za-z0-9-]+)"\?>\n')


def entry(n: int, name: str | None = None, *numbers: tuple[str, str], **fields: str) -> Entry:
    given_numbers = numbers or (("work", f"+4930{n:06d}"),)
    return Entry(
        id=f"phonebook-{n}",
        display_name=name if name is not None else f"Person {n:03d}",
        numbers=tuple(Number(kind, value) for kind, value in given_numbers),  # type: ignore[arg-type]
        **fields,
    )


def many(count: int) -> list[Entry]:
    return [entry(n) for n in range(count)]


def url(offset: int) -> str:
    return f"http://pbx.example:8080/directory/x.xml?q=a&token=t&offset={offset}"


def parse(raw: bytes) -> ET.Element:
    """The document as a phone reads it, after the checks every format must pass: a
    declaration naming the encoding the bytes are in, and no raw `&`."""
    declared = DECLARATION.match(raw)
    assert declared, raw[:80]
    assert declared.group(1).lower() == b"utf-8"
    raw.decode("utf-8")  # the bytes are what the declaration says
    assert not RAW_AMPERSAND.search(raw)
    return ET.fromstring(raw)


def render(vendor: str, entries: list[Entry], view: View | None = None) -> ET.Element:
    return parse(PHONES[vendor].render(entries, view or View()))


def offset_of(link: str) -> int:
    return int(parse_qs(urlsplit(link).query)["offset"][0])


def test_the_registry_names_each_vendor_once() -> None:
    assert sorted(PHONES) == sorted(VENDORS)
    assert all(p.media_type == "text/xml; charset=utf-8" for p in PHONES.values())
    assert EXPORTS["vcf"].media_type == "text/vcard; charset=utf-8"
    assert EXPORTS["csv"].media_type == "text/csv; charset=utf-8"


# --- each vendor's structure --------------------------------------------------------------


def test_yealink() -> None:
    book = [
        entry(1, "Alice", ("work", "+4930111"), ("mobile", "+49170111"), ("home", "+4930999")),
        entry(2, "No number", ("work", "")),
    ]
    root = render("yealink", book)
    assert root.tag == "YealinkIPPhoneDirectory"
    (item,) = root.findall("DirectoryEntry")  # an entry without a number is left out
    assert item.findtext("Name") == "Alice"
    assert [(t.get("label"), t.text) for t in item.findall("Telephone")] == [
        ("Work", "+4930111"),
        ("Mobile", "+49170111"),
        ("Home", "+4930999"),
    ]


def test_snom_pages_of_100_with_next_on_f4() -> None:
    book = many(150)
    first = render("snom", book, View(page_url=url))
    assert first.tag == "SnomIPPhoneMenu"
    assert first.findtext("Title") == "Directory"
    items = first.findall("MenuItem")
    assert len(items) == 100
    assert items[0].get("name") == "Person 000"
    assert items[0].findtext("Url") == "snom://mb_nop#numberdial=+4930000000"
    assert items[0].findtext("ExtraText") == "+4930000000"
    (key,) = first.findall("SoftKeyItem")
    assert key.findtext("Name") == "F4" and key.findtext("Label") == "Next"
    assert offset_of(key.findtext("URL") or "") == 100

    second = render("snom", book, View(offset=100, page_url=url))
    assert len(second.findall("MenuItem")) == 50
    keys = {k.findtext("Name"): k.findtext("URL") for k in second.findall("SoftKeyItem")}
    assert set(keys) == {"F2"} and offset_of(keys["F2"] or "") == 0


def test_snom_lists_each_number_and_says_which() -> None:
    book = [entry(1, "Bob", ("work", "101"), ("mobile", "+49170222"))]
    items = render("snom", book).findall("MenuItem")
    assert [i.get("name") for i in items] == ["Bob", "Bob (mobile)"]
    assert render("snom", []).findtext("Title") == "Directory: no entries"


def test_grandstream() -> None:
    book = [
        entry(
            1,
            "Carol Jones",
            ("work", "+4930111"),
            ("mobile", "+49170111"),
            first_name="Carol",
            last_name="Jones",
        ),
        entry(2, "ACME & Co"),
    ]
    root = render("grandstream", book)
    assert root.tag == "AddressBook"
    carol, acme = root.findall("Contact")
    assert carol.findtext("FirstName") == "Carol" and carol.findtext("LastName") == "Jones"
    phones = carol.findall("Phone")
    assert [p.get("type") for p in phones] == ["Work", "Mobile"]
    assert [p.findtext("phonenumber") for p in phones] == ["+4930111", "+49170111"]
    assert all(p.findtext("accountindex") == "0" for p in phones)
    # At least one of FirstName and LastName holds the name.
    assert acme.findtext("LastName") == "ACME & Co"


def test_grandstream_writes_at_most_1000_contacts() -> None:
    assert len(render("grandstream", many(1200)).findall("Contact")) == 1000


def test_cisco_pages_of_32_with_a_next_soft_key() -> None:
    book = many(70)
    first = render("cisco", book, View(page_url=url))
    assert first.tag == "CiscoIPPhoneDirectory"
    assert first.findtext("Title") == "Directory"
    assert first.findtext("Prompt") == "1-32 of 70"
    entries = first.findall("DirectoryEntry")
    assert len(entries) == 32
    assert [e.findtext("Name") for e in entries[:2]] == ["Person 000", "Person 001"]
    assert entries[0].findtext("Telephone") == "+4930000000"
    keys = {k.findtext("Name"): k for k in first.findall("SoftKeyItem")}
    assert set(keys) == {"Dial", "Exit", "Next"}
    assert keys["Dial"].findtext("URL") == "SoftKey:Dial"
    assert keys["Exit"].findtext("URL") == "SoftKey:Exit"
    assert keys["Next"].findtext("Position") == "4"
    following = keys["Next"].findtext("URL") or ""
    assert following.startswith("http://pbx.example:8080/directory/x.xml?")
    assert offset_of(following) == 32
    # The URL keeps the rest of the query (the search, the token).
    assert parse_qs(urlsplit(following).query)["q"] == ["a"]

    second = render("cisco", book, View(offset=32, page_url=url))
    assert second.findtext("Prompt") == "33-64 of 70"
    assert len(second.findall("DirectoryEntry")) == 32
    links = {k.findtext("Name"): k.findtext("URL") or "" for k in second.findall("SoftKeyItem")}
    assert offset_of(links["Previous"]) == 0 and offset_of(links["Next"]) == 64

    last = render("cisco", book, View(offset=64, page_url=url))
    assert len(last.findall("DirectoryEntry")) == 6
    names = {k.findtext("Name") for k in last.findall("SoftKeyItem")}
    assert "Next" not in names and "Previous" in names


def test_cisco_counts_numbers_not_contacts() -> None:
    # 20 contacts with two numbers each are 40 directory entries: two pages.
    book = [entry(n, None, ("work", f"+4930{n}"), ("mobile", f"+49170{n}")) for n in range(20)]
    first = render("cisco", book, View(page_url=url))
    assert len(first.findall("DirectoryEntry")) == 32
    assert first.findtext("Prompt") == "1-32 of 40"
    assert len(render("cisco", book, View(offset=32)).findall("DirectoryEntry")) == 8


def test_cisco_without_more_pages_keeps_the_phone_s_soft_keys() -> None:
    root = render("cisco", many(5), View(page_url=url))
    assert root.findall("SoftKeyItem") == []
    assert render("cisco", []).findtext("Prompt") == "No entries"
    assert render("cisco", many(3), View(complete=False)).findtext("Prompt") == "1-3 of 3+"


def test_fanvil_remote_phonebook_fills_the_typed_slots() -> None:
    book = [
        entry(1, "Dave", ("work", "+4930111"), ("mobile", "+49170111"), ("home", "+4930999")),
        entry(2, "Speed", ("other", "+4930222")),
        entry(3, "Only mobile", ("mobile", "+49170333")),
    ]
    root = render("fanvil", book)
    assert root.tag == "PhoneBook"
    dave, speed, mobile = root.findall("DirectoryEntry")
    slots = ("Name", "Telephone", "Mobile", "Other", "Ring", "Group")
    assert [child.tag for child in dave] == list(slots)
    assert [dave.findtext(s) for s in slots[:4]] == ["Dave", "+4930111", "+49170111", "+4930999"]
    assert speed.findtext("Other") == "+4930222"
    assert mobile.findtext("Mobile") == "+49170333"


def test_fanvil_search_results_are_menu_items_16_a_page() -> None:
    book = many(20)
    first = render("fanvil", book, View(search="person", page_url=url))
    assert first.tag == "FanvilIPPhoneDirectory"
    assert first.findall(".//DirectoryEntry") == []  # that shape crashed phones
    items = first.findall("MenuItem")
    assert len(items) == 16
    assert items[0].findtext("Prompt") == "Person 000"
    assert items[0].findtext("URI") == "+4930000000"
    keys = {k.findtext("Name"): k.findtext("URI") for k in first.findall("SoftKey")}
    assert offset_of(keys["Next"] or "") == 16
    second = render("fanvil", book, View(search="person", offset=16, page_url=url))
    assert len(second.findall("MenuItem")) == 4


@pytest.mark.parametrize(
    ("offset", "count"), [(0, 10), (10, 10), (20, 10), (0, 100), (5, 7), (0, None), (26, 10)]
)
def test_gigaset_counters_are_consistent(offset: int, count: int | None) -> None:
    # 9 contacts with one number and 9 with two: 27 entries.
    book = [entry(n) for n in range(9)] + [
        entry(n, None, ("work", f"+4930{n}"), ("mobile", f"+49170{n}")) for n in range(9, 18)
    ]
    root = render("gigaset", book, View(offset=offset, count=count, list_type="pb"))
    assert root.tag == "list"
    assert root.get("response") == "get_list" and root.get("type") == "pb"
    entries = root.findall("entry")
    total, first, last = (int(root.get(a) or -1) for a in ("total", "first", "last"))
    assert total == 27
    assert first == offset + 1
    assert last - first + 1 == len(entries)
    assert last <= total
    assert len(entries) == min(count or total, max(0, total - offset))
    assert len({e.get("id") for e in entries}) == len(entries)
    for e in entries:
        assert [c.tag for c in e] == ["ln", "fn", "hm"]
        assert e.findtext("hm")


def test_gigaset_nothing_found_names_the_searched_field() -> None:
    root = render("gigaset", [], View(searched="hm", list_type="pr"))
    assert root.tag == "list" and root.findall("entry") == []
    assert root.attrib == {"response": "get_list", "type": "pr", "notfound": "hm", "total": "0"}


def test_gigaset_splits_names() -> None:
    book = [entry(1, "Erin Smith", first_name="Erin", last_name="Smith"), entry(2, "ACME")]
    erin, acme = render("gigaset", book).findall("entry")
    assert (erin.findtext("fn"), erin.findtext("ln")) == ("Erin", "Smith")
    assert (acme.findtext("fn"), acme.findtext("ln")) == ("", "ACME")


def test_polycom_numbers_are_unique_and_names_at_most_40_bytes() -> None:
    long_name = "Ä" * 30  # 60 bytes
    book = [
        entry(1, "Private Frank", ("work", "+4930111")),
        entry(2, "Global Frank", ("work", "+4930111"), ("mobile", "+49170111")),
        entry(3, long_name, first_name=long_name, last_name="Ö" * 25),
    ]
    root = render("polycom", book)
    assert root.tag == "directory"
    items = root.findall("item_list/item")
    contacts = [i.findtext("ct") for i in items]
    assert contacts == ["+4930111", "+49170111", "+4930000003"]
    assert len(set(contacts)) == len(contacts)
    assert items[0].findtext("ln") == "Private Frank"  # the first to list a number keeps it
    for item in items:
        assert [c.tag for c in item] == ["ln", "fn", "ct"]
        assert len((item.findtext("fn") or "").encode()) <= 40
        assert len((item.findtext("ln") or "").encode()) <= 40
    assert items[2].findtext("fn") == "Ä" * 20 and items[2].findtext("ln") == "Ö" * 20


def test_polycom_file_stays_under_200_kb() -> None:
    raw = PHONES["polycom"].render(many(5000), View())
    assert len(raw) <= 200_000
    items = parse(raw).findall("item_list/item")
    assert 1000 < len(items) < 5000


@pytest.mark.parametrize("vendor", ["cisco", "fanvil"])
def test_search_forms_that_add_q_to_the_url(vendor: str) -> None:
    directory = f"http://pbx.example:8080/directory/{vendor}.xml?token=t&user=alice"
    search = PHONES[vendor].search
    assert search is not None
    form = parse(search(directory, "Directory"))
    assert form.tag == {"cisco": "CiscoIPPhoneInput", "fanvil": "FanvilIPPhoneInputScreen"}[vendor]
    assert form.findtext("Title") == "Directory"
    assert form.findtext("URL") == directory
    assert form.findtext("InputItem/QueryStringParam") == "q"
    assert form.findtext("InputItem/InputFlags") == "A"


def test_snom_search_form_puts_the_text_in_the_url() -> None:
    search = PHONES["snom"].search
    assert search is not None
    form = parse(search("http://pbx.example:8080/directory/snom.xml?token=t", "Directory"))
    assert form.tag == "SnomIPPhoneInput"
    assert form.findtext("Url") == "http://pbx.example:8080/directory/snom.xml?token=t&q=__X__"
    assert form.findtext("InputItem/InputToken") == "__X__"
    plain = parse(search("http://pbx.example:8080/directory/snom.xml", "Directory"))
    assert plain.findtext("Url") == "http://pbx.example:8080/directory/snom.xml?q=__X__"


def test_vendors_without_a_search_form() -> None:
    without = {v for v, phone in PHONES.items() if phone.search is None}
    assert without == {"yealink", "grandstream", "gigaset", "polycom"}


# --- escaping ---------------------------------------------------------------------------

#: Where each vendor shows an entry's name.
NAME_OF: dict[str, Callable[[ET.Element], str | None]] = {
    "yealink": lambda r: r.findtext("DirectoryEntry/Name"),
    "snom": lambda r: r.findall("MenuItem")[0].get("name"),
    "grandstream": lambda r: r.findtext("Contact/LastName"),
    "cisco": lambda r: r.findtext("DirectoryEntry/Name"),
    "fanvil": lambda r: r.findtext("DirectoryEntry/Name"),
    "gigaset": lambda r: r.findtext("entry/ln"),
    "polycom": lambda r: r.findtext("item_list/item/ln"),
}


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_arrive_as_written(vendor: str, name: str) -> None:
    raw = PHONES[vendor].render([entry(1, name)], View())
    shown = NAME_OF[vendor](parse(raw))
    if vendor == "polycom":  # 40 bytes at most
        assert shown == xmlmodel.truncate_bytes(name, 40)
    else:
        assert shown == name
    assert b"&lt;" in raw or "<" not in name
    assert name.encode() in raw or vendor == "polycom" or "&" in name or "<" in name


@pytest.mark.parametrize("vendor", VENDORS)
def test_an_ampersand_in_a_number_or_url_is_escaped(vendor: str) -> None:
    raw = PHONES[vendor].render(
        [entry(1, "A&B", ("work", "1&2")), *many(40)], View(page_url=url, search="")
    )
    parse(raw)


@settings(max_examples=150, deadline=None)
@given(name=st.text(min_size=1, max_size=120))
def test_any_name_round_trips_through_every_xml_format(name: str) -> None:
    item = entry(1, name)
    expected = xmlmodel.text(item.name)
    for vendor in VENDORS:
        raw = PHONES[vendor].render([item], View())
        shown = NAME_OF[vendor](parse(raw)) or ""
        if vendor == "polycom":
            assert expected.startswith(shown)
        elif vendor == "snom":  # an attribute: the parser keeps it as written too
            assert shown == expected
        else:
            assert shown == expected


# --- vCard -------------------------------------------------------------------------------


def unfold(raw: bytes) -> list[str]:
    text = raw.decode("utf-8")
    assert text.endswith("\r\n")
    assert "\n" not in text.replace("\r\n", "")
    return text.replace("\r\n ", "").split("\r\n")[:-1]


def unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def split_unescaped(value: str, sep: str) -> list[str]:
    """The components of a structured value, split where `sep` is not escaped."""
    parts, current, chars = [], "", iter(value)
    for char in chars:
        if char == "\\":
            current += char + next(chars, "")
        elif char == sep:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def vcards(raw: bytes) -> list[dict[str, list[str]]]:
    """Each card's properties (name with parameters → raw values), read the RFC 2426
    way: unfold, then split at the first colon."""
    cards: list[dict[str, list[str]]] = []
    for line in unfold(raw):
        name, _, value = line.partition(":")
        if line == "BEGIN:VCARD":
            cards.append({})
        cards[-1].setdefault(name, []).append(value)
    return cards


def vcard_bytes(entries: list[Entry]) -> bytes:
    export = EXPORTS["vcf"]
    return export.head() + export.body(entries)


def test_vcard_cards() -> None:
    book = [
        entry(
            1,
            "Müller & Söhne <GmbH>",
            ("work", "+4930111"),
            ("mobile", "+49170111"),
            ("home", "+4930999"),
            ("other", "+4930555"),
            first_name="Hans; Peter",
            last_name="Müller, Jr.",
            organisation="Müller & Söhne, Berlin",
        )
    ]
    (card,) = vcards(vcard_bytes(book))
    assert card["BEGIN"] == ["VCARD"] and card["END"] == ["VCARD"]
    assert card["VERSION"] == ["3.0"]
    assert card["FN"] == ["Müller & Söhne <GmbH>"]
    assert card["N"] == ["Müller\\, Jr.;Hans\\; Peter;;;"]
    last, first, *_ = (unescape(v) for v in split_unescaped(card["N"][0], ";"))
    assert (last, first) == ("Müller, Jr.", "Hans; Peter")
    assert unescape(card["ORG"][0]) == "Müller & Söhne, Berlin"
    assert card["TEL;TYPE=WORK,VOICE"] == ["+4930111"]
    assert card["TEL;TYPE=CELL,VOICE"] == ["+49170111"]
    assert card["TEL;TYPE=HOME,VOICE"] == ["+4930999"]
    assert card["TEL;TYPE=VOICE"] == ["+4930555"]


def test_vcard_lines_are_folded_at_75_octets() -> None:
    name = "Ünïcödé 😀 " * 20
    raw = vcard_bytes([entry(1, name)])
    physical = raw.split(b"\r\n")[:-1]
    assert max(len(line) for line in physical) <= FOLD_AT
    assert any(line.startswith(b" ") for line in physical)
    for line in physical:
        line.decode("utf-8")  # no line is cut inside a character
    (card,) = vcards(raw)
    assert unescape(card["FN"][0]) == name.strip()


_VCARD_DROPPED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


@settings(max_examples=200, deadline=None)
@given(
    name=st.text(min_size=1, max_size=200),
    organisation=st.text(max_size=100),
    first=st.text(max_size=60),
)
def test_any_text_round_trips_through_the_vcard(name: str, organisation: str, first: str) -> None:
    item = entry(1, name, organisation=organisation, first_name=first)

    def expected(value: str) -> str:
        return re.sub(r"\r\n|\r|\n", "\n", _VCARD_DROPPED.sub("", value))

    raw = vcard_bytes([item])
    assert max(len(line) for line in raw.split(b"\r\n")) <= FOLD_AT
    (card,) = vcards(raw)
    assert unescape(card["FN"][0]) == expected(item.name)
    assert unescape(split_unescaped(card["N"][0], ";")[1]) == expected(first.strip())
    if organisation.strip():
        assert unescape(card["ORG"][0]) == expected(organisation.strip())


# --- CSV ---------------------------------------------------------------------------------


def test_csv_rows() -> None:
    export = EXPORTS["csv"]
    book = [
        entry(1, 'Müller & "Söhne", <GmbH>', ("work", "+4930111"), ("mobile", "+49170111")),
        entry(2, '=HYPERLINK("http://evil")', ("other", "+4930222"), organisation="@corp"),
    ]
    raw = export.head() + export.body(book)
    assert raw.endswith(b"\r\n")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert list(rows[0]) == [
        "id", "displayname", "givenname", "surname", "organisation",
        "work", "mobile", "home", "other",
    ]  # fmt: skip
    assert rows[0]["displayname"] == 'Müller & "Söhne", <GmbH>'
    assert (rows[0]["work"], rows[0]["mobile"]) == ("+4930111", "+49170111")
    assert rows[1]["displayname"] == '\'=HYPERLINK("http://evil")'
    assert rows[1]["organisation"] == "'@corp"
    assert rows[1]["other"] == "+4930222"  # a number is left as it is
