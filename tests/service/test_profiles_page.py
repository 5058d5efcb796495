"""`profiles.page`: profiles searched by name or template, ordered and paged by the core."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from pbx_connector.errors import UsageError
from pbx_connector.service import App


def test_search_order_and_paging(engine: Engine) -> None:
    app = App(engine)
    for name, template in (
        ("office", "csv-phonebook"),
        ("Admins", "csv-users"),
        ("b", "csv-speeddials"),
    ):
        app.profiles.create(name, template, settings={"path": "/nonexistent.csv"})
    names = lambda page: [p.name for p in page.items]  # noqa: E731
    assert names(app.profiles.page()) == ["Admins", "b", "office"]
    assert names(app.profiles.page(order="-name")) == ["office", "b", "Admins"]
    assert names(app.profiles.page(order="template")) == ["office", "b", "Admins"]
    found = app.profiles.page(search="PHONE")  # the template, any case
    assert names(found) == ["office"] and found.total == 1
    second = app.profiles.page(limit=1, offset=1)
    assert names(second) == ["b"] and second.total == 3
    with pytest.raises(UsageError) as refused:
        app.profiles.page(order="mode")
    assert refused.value.field == "order"
