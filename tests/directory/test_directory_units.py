"""Pure logic of the directory layer: escaping (RFC 4514/4515), readable binary values,
URI and filter checks."""

from __future__ import annotations

import uuid

import ldap.dn
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pbx_connector.directory.connection import LdapSettings, parse_uris
from pbx_connector.directory.escape import escape_dn_value, escape_filter_value
from pbx_connector.directory.search import check_filter
from pbx_connector.directory.values import guid_text, row_value, sid_text, value_text
from pbx_connector.errors import ConfigError
from pbx_connector.sources.ldap import ad_bind_name, domain_base_dn, query_settings

# Text as users type it, with every character that means something in a DN or a filter.
tricky = st.text(
    alphabet=st.sampled_from(list("abcXYZ äöüß 01 ,+\"\\<>;=#*()\x00/'é"))
    | st.characters(exclude_categories=("Cs",)),
    min_size=1,
    max_size=30,
)


@given(tricky)
def test_an_escaped_dn_value_parses_back_to_itself(value: str) -> None:
    dn = f"cn={escape_dn_value(value)},dc=example,dc=test"
    parsed = ldap.dn.str2dn(dn)
    assert len(parsed) == 3  # nothing the user typed added or split an RDN
    assert len(parsed[0]) == 1  # …or made a multi-valued RDN with "+"
    attr, got, _ = parsed[0][0]
    assert (attr, got) == ("cn", value)


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("Müller, Hans", "Müller\\, Hans"),
        ("a+b", "a\\+b"),
        ('say "hi"', 'say \\"hi\\"'),
        ("back\\slash", "back\\\\slash"),
        ("#1", "\\#1"),
        (" lead", "\\ lead"),
        ("trail ", "trail\\ "),
        ("in # middle", "in # middle"),
        ("a=b;c<d>", "a\\=b\\;c\\<d\\>"),
        ("nul\x00", "nul\\00"),
    ],
)
def test_dn_escaping_examples(value: str, escaped: str) -> None:
    assert escape_dn_value(value) == escaped


@given(tricky)
def test_an_escaped_filter_value_stays_one_assertion(value: str) -> None:
    escaped = escape_filter_value(value)
    assert not any(c in escaped for c in "*()\x00")
    # Every backslash starts a two-hex-digit escape: nothing can close the item early.
    i = 0
    while (i := escaped.find("\\", i)) != -1:
        assert escaped[i + 1 : i + 3] in ("2a", "28", "29", "5c", "00")
        i += 3
    check_filter(f"(uid={escaped})")


@pytest.mark.parametrize(
    ("value", "escaped"),
    [("st*r", "st\\2ar"), ("paren(s)", "paren\\28s\\29"), ("a\\b", "a\\5cb"), ("\x00", "\\00")],
)
def test_filter_escaping_examples(value: str, escaped: str) -> None:
    assert escape_filter_value(value) == escaped


def test_guid_is_shown_the_way_ad_tools_show_it() -> None:
    known = uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff")
    assert guid_text(known.bytes_le) == "6f9619ff-8b86-d011-b42d-00c04fc964ff"
    assert value_text("objectGUID", known.bytes_le) == str(known)
    assert value_text("OBJECTGUID", known.bytes_le) == str(known)  # names are case-insensitive


def test_sid_is_shown_as_s_1_5() -> None:
    # S-1-5-21-1004336348-1177238915-682003330-512 (Domain Admins of some domain)
    subs = [21, 1004336348, 1177238915, 682003330, 512]
    raw = bytes([1, len(subs)]) + (5).to_bytes(6, "big")
    raw += b"".join(s.to_bytes(4, "little") for s in subs)
    assert sid_text(raw) == "S-1-5-21-1004336348-1177238915-682003330-512"
    assert value_text("objectSid", raw) == "S-1-5-21-1004336348-1177238915-682003330-512"
    # A malformed SID is not guessed at.
    assert value_text("objectSid", b"\x01\x05ab").startswith("base64:")


def test_values_are_text_lists_or_empty() -> None:
    assert row_value("cn", []) == ""
    assert row_value("cn", ["Jürgen".encode()]) == "Jürgen"
    assert row_value("telephoneNumber", [b"1", b"2"]) == ["1", "2"]
    assert row_value("jpegPhoto", [b"\xff\xd8\xff"]) == "base64:/9j/"


def test_uris_get_the_scheme_security_implies_and_must_not_contradict_it() -> None:
    assert parse_uris("dc1.example.test, dc2", "ldaps") == (
        "ldaps://dc1.example.test",
        "ldaps://dc2",
    )
    assert parse_uris("ldap://a:389/ ldap://b", "starttls") == ("ldap://a:389", "ldap://b")
    with pytest.raises(ConfigError, match="security=ldaps"):
        parse_uris("ldaps://a", "starttls")
    with pytest.raises(ConfigError, match="starttls or none"):
        parse_uris("ldap://a", "ldaps")
    with pytest.raises(ConfigError, match="not an ldap"):
        parse_uris("http://a", "none")


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(ConfigError, match="no LDAP server"):
        LdapSettings(uris=())
    with pytest.raises(ConfigError, match="security must be"):
        LdapSettings(uris=("ldap://a",), security="tls")
    assert "secret" not in repr(LdapSettings(uris=("ldap://a",), bind_password="secret"))


@pytest.mark.parametrize(
    "text",
    [
        "(uid=*)",
        "(&(objectClass=user)(!(userAccountControl:1.2.840.113556.1.4.803:=2)))",
        "(|(a=1)(b=2)(&(c=3)(d>=4)))",
        "(memberOf:1.2.840.113556.1.4.1941:=cn=x\\2cdc=y)",
    ],
)
def test_valid_filters_pass(text: str) -> None:
    check_filter(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("uid=*", "expected '('"),
        ("(uid=*", "missing ')'"),
        ("(&(uid=*)", "missing ')'"),
        ("(uid)", "not attribute=value"),
        ("(uid=a))", "unexpected text"),
        ("", "expected '('"),
    ],
)
def test_invalid_filters_are_explained(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem.replace("(", "\\(").replace(")", "\\)")):
        check_filter(text)


def test_ad_domain_gives_base_dn_and_bind_name() -> None:
    assert domain_base_dn("example.test") == "DC=example,DC=test"
    assert domain_base_dn("corp.example.test.") == "DC=corp,DC=example,DC=test"
    assert ad_bind_name("svc-pbx", "example.test") == "svc-pbx@example.test"
    assert ad_bind_name("svc@other.test", "example.test") == "svc@other.test"
    assert ad_bind_name("CN=svc,CN=Users,DC=x", "example.test") == "CN=svc,CN=Users,DC=x"
    assert ad_bind_name("EXAMPLE\\svc", "example.test") == "EXAMPLE\\svc"


def test_ucs_and_ad_queries() -> None:
    ucs = query_settings(
        "ucs",
        {"base_dn": "dc=x", "filter": "(uid=*)", "allowed_attribute": "phoneOk",
         "allowed_value": "y*"},
    )  # fmt: skip
    assert ucs.base_dn == "cn=users,dc=x"
    assert ucs.filter == "(&(uid=*)(phoneOk=y\\2a))"
    ad = query_settings("ad", {"domain": "example.test", "group": "Sales"})
    assert (ad.base_dn, ad.group, ad.filter) == ("DC=example,DC=test", "Sales", "(objectClass=*)")
