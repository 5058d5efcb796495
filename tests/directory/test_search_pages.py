"""Paged searches a page at a time: the next page asked for before this one is handed
on, entries converted while cycle collection is paused, and the pause undone."""

from __future__ import annotations

import gc
import threading
from typing import Any

import ldap
import pytest
from ldap.controls import SimplePagedResultsControl

from pbx_connector.directory.search import collection_paused, paged_search, search_pages
from pbx_connector.errors import ConfigError, SourceError


class FakeConnection:
    """Serves `pages` (lists of (dn, entry)) with cookies, recording the calls."""

    _uri = "ldap://fake"

    def __init__(self, pages: list[list[Any]], fail: dict[str, Exception] | None = None):
        self.pages = pages
        self.fail = fail or {}
        self.calls: list[str] = []
        self.sent = 0

    def search_ext(self, base: str, scope: int, filterstr: str, **kwargs: Any) -> int:
        if "search" in self.fail and self.sent > 0:
            raise self.fail["search"]
        control = kwargs["serverctrls"][0]
        # The cookie names the page asked for.
        page = int(control.cookie or b"0")
        self.calls.append(f"search {page}")
        self.sent += 1
        return page

    def result3(self, msgid: int, timeout: float = -1) -> tuple[Any, ...]:
        if "result" in self.fail:
            raise self.fail["result"]
        self.calls.append(f"result {msgid}")
        more = msgid + 1 < len(self.pages)
        cookie = str(msgid + 1).encode() if more else b""
        control = SimplePagedResultsControl(True, size=2, cookie=cookie)
        return 101, self.pages[msgid], msgid, [control]


PAGES = [
    [("cn=a", {"cn": [b"a"]}), ("cn=b", {"cn": [b"b"]})],
    [(None, ["ldap://elsewhere/"]), ("cn=c", {"cn": [b"c"]})],
    [("cn=d", {"cn": [b"d"]})],
]


def test_pages_are_converted_and_the_next_one_is_asked_for_first() -> None:
    conn = FakeConnection(PAGES)
    seen: list[tuple[list[str], bool]] = []
    pages = search_pages(
        conn,  # type: ignore[arg-type]
        "dc=x",
        ldap.SCOPE_SUBTREE,
        "(cn=*)",
        ["cn"],
        lambda dn, entry: (dn, entry["cn"][0].decode(), gc.isenabled()),
        page_size=2,
    )
    for page in pages:
        seen.append(([dn for dn, _, _ in page], all(not on for _, _, on in page)))
        # The caller's own code runs with collection on.
        assert gc.isenabled()
    # Search references (no DN) are skipped; conversion ran with collection paused.
    assert seen == [(["cn=a", "cn=b"], True), (["cn=c"], True), (["cn=d"], True)]
    assert conn.calls == [
        "search 0", "result 0", "search 1", "result 1", "search 2", "result 2",
    ]  # fmt: skip


def test_paged_search_yields_every_entry() -> None:
    conn = FakeConnection(PAGES)
    found = [dn for dn, _ in paged_search(conn, "dc=x", 2, "(cn=*)", None, 2)]  # type: ignore[arg-type]
    assert found == ["cn=a", "cn=b", "cn=c", "cn=d"]


@pytest.mark.parametrize(
    ("where", "error", "kind", "text"),
    [
        ("result", ldap.NO_SUCH_OBJECT({"desc": "No such object"}), SourceError, "does not exist"),
        ("result", ldap.FILTER_ERROR({"desc": "Bad search filter"}), ConfigError, "rejected"),
        ("result", ldap.SIZELIMIT_EXCEEDED({"desc": "x"}), SourceError, "size limit"),
        ("result", ldap.TIMEOUT({"desc": "x"}), SourceError, "timed out"),
        ("search", ldap.SERVER_DOWN({"desc": "Can't contact"}), SourceError, "connection was lost"),
        ("search", ldap.OTHER({"desc": "odd"}), SourceError, "the search failed: odd"),
    ],
)
def test_errors_are_said_in_words_and_the_pause_ends(
    where: str, error: Exception, kind: type[Exception], text: str
) -> None:
    conn = FakeConnection(PAGES, fail={where: error})
    with pytest.raises(kind, match=text):
        list(paged_search(conn, "dc=x", 2, "(cn=*)", None, 2))  # type: ignore[arg-type]
    assert gc.isenabled()


def test_a_conversion_error_ends_the_pause() -> None:
    def convert(dn: str, entry: Any) -> None:
        raise ValueError("bad entry")

    with pytest.raises(ValueError, match="bad entry"):
        list(search_pages(FakeConnection(PAGES), "dc=x", 2, "(cn=*)", None, convert, 2))  # type: ignore[arg-type]
    assert gc.isenabled()


def test_pauses_nest_and_overlap_across_threads() -> None:
    entered, release = threading.Event(), threading.Event()

    def other() -> None:
        with collection_paused():
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=other)
    with collection_paused():
        thread.start()
        entered.wait(5)
        with collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    # The other thread's pause still holds.
    assert not gc.isenabled()
    release.set()
    thread.join(5)
    assert gc.isenabled()


def test_collection_switched_off_before_stays_off() -> None:
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
