"""A search page read from the index in id order gives exactly the records (and order)
of a plain filter, with an owner or not, forwards and backwards; and a search counts its
matches only up to `SEARCH_COUNT_LIMIT`."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from pbx_connector.domain.phone import PhoneNormaliser
from pbx_connector.domain.search import fold
from pbx_connector.domain.targets import TARGETS, clean_record
from pbx_connector.service import App
from pbx_connector.service import records as records_service
from pbx_connector.store import records as record_store

NAMES = ["Jürgen Müller", "Anna Müllerová", "Mila Keller", "Zoë Miller", "Ola Nowak"]


@pytest.fixture
def app(engine: Engine) -> App:
    app = App(engine)
    app.records.add("users", {"username": "carol"})
    normaliser = PhoneNormaliser("DE")
    with engine.begin() as conn:
        for n in range(120):
            values = {"displayname": f"{NAMES[n % 5]} {n}", "phone": f"+49 991 {1000 + n}"}
            if n % 3 == 0:
                values["owner"] = "carol"
            clean = clean_record(TARGETS["phonebook"], values, normaliser)
            record_store.insert_record(conn, "phonebook", clean)
    return app


def _expected(app: App, term: str, owner: str | None, descending: bool) -> list[int]:
    """Brute force: every entry, filtered in Python."""
    every = app.records.list("phonebook", limit=None).items
    ids = [
        e.id
        for e in every
        if fold(term) in fold(e.displayname) and (owner is None or (e.owner or "") == owner)
    ]
    return sorted(ids, reverse=descending)


@pytest.mark.parametrize("owner", [None, "", "carol"])
@pytest.mark.parametrize("order", ["id", "-id"])
@pytest.mark.parametrize("term", ["mül", "LER", "zoë", "nothing"])
def test_a_search_page_in_id_order_is_the_plain_filter(
    app: App, owner: str | None, order: str, term: str
) -> None:
    expected = _expected(app, term, owner, order == "-id")
    got: list[int] = []
    for offset in range(0, 130, 7):
        page = app.records.list(
            "phonebook", search=term, owner=owner, order=order, limit=7, offset=offset
        )
        got += [e.id for e in page.items]
        assert page.total == len(expected) and page.total_exact
    assert got == expected


def test_a_search_counts_its_matches_up_to_a_bound(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(records_service, "SEARCH_COUNT_LIMIT", 30)
    wide = app.records.list("phonebook", search="l", limit=10)  # most of the 120
    assert (wide.total, wide.total_exact, len(wide.items)) == (30, False, 10)
    narrow = app.records.list("phonebook", search="nowak", limit=10)
    assert (narrow.total, narrow.total_exact) == (24, True)
    # A first page with room to spare holds every match: its length is the count.
    whole = app.records.list("phonebook", search="nowak", limit=50)
    assert (whole.total, whole.total_exact, len(whole.items)) == (24, True, 24)
    later = app.records.list("phonebook", search="nowak", limit=50, offset=20)
    assert (later.total, later.total_exact, len(later.items)) == (24, True, 4)
    # At the bound exactly, the count is still exact.
    monkeypatch.setattr(records_service, "SEARCH_COUNT_LIMIT", 24)
    at = app.records.list("phonebook", search="nowak", limit=10)
    assert (at.total, at.total_exact) == (24, True)
    # A whole list (what the command line prints) and a list without a search count all.
    every = app.records.list("phonebook", search="l", limit=None)
    assert every.total_exact and every.total == len(every.items) > 30
    unsearched = app.records.list("phonebook", limit=10)
    assert (unsearched.total, unsearched.total_exact) == (120, True)
