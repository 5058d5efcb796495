"""The lookup over a PostgreSQL store's asynchronous connections (`name_async`,
`find_async`), as `serve` answers a PBX on its event loop there: the same answers as
`name`/`find`, None (ask in a thread) where it cannot answer so, and a clear `StoreError`
when the server is gone, after which the next lookup connects again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import Engine

from pbx_connector.errors import NotFoundError, StoreError
from pbx_connector.models.tokens import Principal
from pbx_connector.service import App
from tests.service.test_lookup_at_once import ASKED, filled


@pytest.fixture
def app(engine: Engine) -> App:
    return filled(App(engine))


def _outcome(call: Any) -> object:
    try:
        return call()
    except Exception as exc:  # the same refusal, whatever it is
        return type(exc)


def test_the_same_answers_as_the_lookup_in_a_thread(app: App) -> None:
    if app.async_readers is None:
        pytest.skip("SQLite answers on the event loop at once (test_lookup_at_once.py)")
    app.lookup.name("0991 12345")  # the settings, read where reading may wait

    async def asked() -> list[tuple[str | None, object]]:
        got = []
        for number, user in ASKED:
            name = await app.lookup.name_async(number, user=user)
            try:
                found: object = await app.lookup.find_async(number, user=user)
            except Exception as exc:
                found = type(exc)
            got.append((name, found))
        assert app.async_readers is not None
        await app.async_readers.close()
        return got

    got = asyncio.run(asked())
    for (number, user), (name, found) in zip(ASKED, got, strict=True):
        assert name == app.lookup.name(number, user=user), (number, user)
        expected = _outcome(lambda n=number, u=user: app.lookup.find(n, user=u))
        assert found == expected, (number, user)
    assert [name for name, _ in got][:8] == [
        "Global",
        "Anna's",
        "Anna's",
        "Global",
        "Anna's",
        "Anna",
        "ben",
        "Pizza",
    ]
    assert sum(found is NotFoundError for _, found in got) == 3


def test_suffix_matching_and_a_phone_token_on_the_loop(app: App) -> None:
    if app.async_readers is None:
        pytest.skip("SQLite answers on the event loop at once")
    app.catalog.set_config({"lookup_match": "suffix", "lookup_suffix_digits": "6"})
    app.lookup.name("0")
    phone = Principal(username="anna", role="phone")

    async def asked() -> tuple[str | None, str | None, str | None]:
        assert app.async_readers is not None
        try:
            return (
                await app.lookup.name_async("+43 991 12345"),
                await app.lookup.name_async("0991 12345", caller=phone),
                # Named by extension: the store must be asked who that is (in a thread).
                await app.lookup.name_async("0991 12345", user="101", caller=phone),
            )
        finally:
            await app.async_readers.close()

    assert asyncio.run(asked()) == ("Global", "Anna's", None)


def test_settings_due_to_be_read_again_are_read_in_a_thread(app: App) -> None:
    if app.async_readers is None:
        pytest.skip("SQLite answers on the event loop at once")
    # Nothing read yet: the settings are not in memory.
    assert asyncio.run(app.lookup.name_async("0991 12345")) is None


def test_sqlite_has_no_asynchronous_connections(app: App) -> None:
    if app.async_readers is not None:
        pytest.skip("PostgreSQL")
    app.lookup.name("0991 12345")
    assert asyncio.run(app.lookup.name_async("0991 12345")) is None
    assert asyncio.run(app.lookup.find_async("0991 12345")) is None


def test_a_lost_server_is_a_store_error_and_the_next_lookup_connects_again(
    app: App, engine: Engine, request: pytest.FixtureRequest
) -> None:
    if app.async_readers is None:
        pytest.skip("an SQLite store has no server connection to lose")
    app.lookup.name("0991 12345")
    server = request.getfixturevalue("postgres_server")

    async def asked() -> None:
        assert app.async_readers is not None
        try:
            assert await app.lookup.name_async("0991 12345") == "Global"
            server.terminate_connections(engine.url.database)
            with pytest.raises(StoreError, match="lost the connection"):
                await app.lookup.name_async("0991 12345")
            assert await app.lookup.name_async("0991 12345") == "Global"
        finally:
            await app.async_readers.close()

    asyncio.run(asked())
