"""Caller names in a real SIP call: Kamailio asks `serve` at /lookup.txt for the name of
each new INVITE's caller (the From user) for the called user (the Request-URI user), and
sets it as the From display name; SIPp calls through it and the callee reports the From
header it got. The configuration is tests/pbx/kamailio.cfg, whose lookup part is the one
docs/pbx.md shows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pbx.conftest import KAMAILIO_CFG, Connector
from tests.servers.kamailio import KamailioServer, render
from tests.servers.sipp import Call, SippPhones

CALLER = "+4999112345"
GLOBAL_NAME = "Müller & Söhne"
PRIVATE_NAME = "Mama"
UNKNOWN = "+4930999999"
DOCS = Path(__file__).parents[2] / "docs" / "pbx.md"

# name-addr of RFC 3261: an optional quoted display name (quoted-pairs for `"` and `\`,
# UTF-8 allowed), one URI in angle brackets, then the header's parameters.
_NAME_ADDR = re.compile(
    r'(?:"(?P<display>(?:[^"\\\r\n]|\\[\x00-\x09\x0b\x0c\x0e-\x7f])*)" ?)?'
    r"<(?P<uri>[^<>\"\s]+)>(?P<params>(?:;[^;<>\"\s]+)*)"
)


@dataclass(frozen=True)
class From:
    display: str | None
    uri: str
    params: str


def parse_from(header: str) -> From:
    """A From header value as a SIP parser reads it; anything else fails the test."""
    match = _NAME_ADDR.fullmatch(header)
    assert match, f"not a well-formed From header: {header!r}"
    display = match["display"]
    if display is not None:
        display = re.sub(r"\\(.)", r"\1", display)
    return From(display, match["uri"], match["params"])


def arrived_as(call: Call, name: str) -> None:
    """The callee saw `name` as the display name, and the caller's URI and tag as sent."""
    sent, received = parse_from(call.sent_from), parse_from(call.received_from)
    assert received.display == name, call.received_from
    assert (received.uri, received.params) == (sent.uri, sent.params)


def _directory(connector: Connector) -> None:
    cli = connector.cli
    cli("users", "add", "username=bob", "extension=201", "displayname=Bob Berger")
    cli("users", "add", "username=alice", "extension=202", "displayname=Alice Adler")
    cli("phonebook", "add", f"displayname={GLOBAL_NAME}", "phone=+49 991 12345")
    cli("phonebook", "add", f"displayname={PRIVATE_NAME}", "phone=+49 991 12345", "owner=bob")


def test_a_known_caller_gets_the_global_phonebook_name(
    connector: Connector, proxy: KamailioServer, phones: SippPhones
) -> None:
    _directory(connector)
    # alice has no private entry for the number: the global phonebook names the caller,
    # in place of the display name the caller sent, or where it sent none.
    arrived_as(phones.call(proxy.sip_port, callee="202", caller=CALLER, display="x"), GLOBAL_NAME)
    call = phones.call(proxy.sip_port, callee="alice", caller=CALLER)
    arrived_as(call, GLOBAL_NAME)
    # Non-ASCII as UTF-8 inside the quotes, the `&` as it is.
    assert call.received_from.startswith('"Müller & Söhne" <sip:+4999112345@'), call


def test_the_callees_private_phonebook_wins(
    connector: Connector, proxy: KamailioServer, phones: SippPhones
) -> None:
    _directory(connector)
    # bob, called by extension or by username, has the number in his private phonebook.
    for callee in ("201", "bob"):
        call = phones.call(proxy.sip_port, callee=callee, caller=CALLER, display="Original")
        arrived_as(call, PRIVATE_NAME)
    # The same caller to alice: the global name, not bob's.
    arrived_as(phones.call(proxy.sip_port, callee="202", caller=CALLER), GLOBAL_NAME)


def test_an_unknown_caller_arrives_unchanged(
    connector: Connector, proxy: KamailioServer, phones: SippPhones
) -> None:
    _directory(connector)
    for caller, display in [
        (UNKNOWN, "Original"),
        (UNKNOWN, ""),
        ("anonymous", "Anonymous"),
        ("101", ""),  # an internal number nobody has
    ]:
        call = phones.call(proxy.sip_port, callee="201", caller=caller, display=display)
        assert call.received_from == call.sent_from


# What a name can hold that means something in a SIP header: quotes, backslashes, angle
# brackets, `;`, `,`, `=`, `'` and non-ASCII. Kamailio escapes `"`, `\` and `'` inside
# the quotes (s.escape.common: `\"`, `\\`, `\'`, quoted-pairs a SIP parser reads back as
# the character); everything else stands as it is, harmless between the quotes.
HOSTILE_NAMES = {
    "+4989111001": 'Müller & Söhne "Bau" <GmbH>',
    "+4989111002": "C:\\Daten\\",
    "+4989111003": "O'Brien; tag=evil, <sip:evil@example.com>",
    "+4989111004": '"',
    "+4989111005": "Ærøskøbing 東京 ☎",
}


def test_names_are_quoted_so_that_they_cannot_break_the_header(
    connector: Connector, proxy: KamailioServer, phones: SippPhones
) -> None:
    for number, name in HOSTILE_NAMES.items():
        connector.cli("phonebook", "add", f"displayname={name}", f"phone={number}")
    for number, name in HOSTILE_NAMES.items():
        call = phones.call(proxy.sip_port, callee="201", caller=number, display="Original")
        arrived_as(call, name)
    last = phones.call(proxy.sip_port, callee="201", caller="+4989111001")
    assert last.received_from.startswith('"Müller & Söhne \\"Bau\\" <GmbH>" <sip:'), last


def test_a_stopped_serve_does_not_hold_up_the_call(
    connector: Connector, proxy: KamailioServer, phones: SippPhones
) -> None:
    _directory(connector)
    arrived_as(phones.call(proxy.sip_port, callee="202", caller=CALLER), GLOBAL_NAME)

    # Hung: the connection is accepted, no answer comes. Kamailio's http_client gives up
    # after its 1 s timeout and the call goes through with the From it had.
    connector.freeze()
    hung = phones.call(proxy.sip_port, callee="202", caller=CALLER, display="Original")
    assert hung.received_from == hung.sent_from
    # It waited for the timeout. (Without one it would wait for good, and the caller's
    # SIPp would give up on the call; the bound here only leaves room for a busy machine.)
    assert 0.9 < hung.seconds < 10, hung.seconds

    # Stopped: the connection is refused, the call goes through at once.
    connector.stop()
    gone = phones.call(proxy.sip_port, callee="202", caller=CALLER, display="Original")
    assert gone.received_from == gone.sent_from

    log = proxy.log()
    # One lookup each: the INVITE the caller repeated while the first copy waited for
    # the lookup was dropped by t_precheck_trans(), not looked up again.
    assert log.count("timed out") == 1 and log.count("failed to connect") == 1, log
    # The token goes in a header, never in the URL that Kamailio logs on a failure.
    assert connector.token not in log


_REGION = re.compile(
    r"^[ \t]*# docs/pbx\.md begin \w+\n(.*?)^[ \t]*# docs/pbx\.md end$", re.M | re.S
)
# The values docs/pbx.md shows in place of the test's.
DOC_VALUES = {"LOOKUP_URL": "http://127.0.0.1:8080", "TOKEN": "pbxc_…"}


def test_the_docs_show_this_configuration() -> None:
    shown = render(KAMAILIO_CFG, {**DOC_VALUES, "SIP_PORT": "", "CALLEE_PORT": ""})
    docs = DOCS.read_text(encoding="utf-8")
    section = docs[docs.index("### Kamailio") :]
    section = section[: section.index("\n## ")]
    regions = _REGION.findall(shown)
    assert len(regions) == 3
    for region in regions:
        assert region in section, f"docs/pbx.md's Kamailio section lacks:\n{region}"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('"A \\"B\\" \\\\ C" <sip:1@h>;tag=x', From('A "B" \\ C', "sip:1@h", ";tag=x")),
        ("<sip:1@h>;tag=x", From(None, "sip:1@h", ";tag=x")),
    ],
)
def test_parse_from(header: str, expected: From) -> None:
    assert parse_from(header) == expected


@pytest.mark.parametrize(
    "header",
    ['"A "B"" <sip:1@h>', '"A" <sip:1@h> <sip:2@h>', '"A\\" <sip:1@h>', '"A\r\nX: 1" <sip:1@h>'],
)
def test_parse_from_refuses_broken_headers(header: str) -> None:
    with pytest.raises(AssertionError):
        parse_from(header)
