"""Caller-name lookup for PBXes: `GET /lookup` (JSON) and `GET /lookup.txt` (the name alone,
for a dialplan). Top-level paths, not under `/api/v1`: they are what a PBX is pointed at,
and they take the token as `?token=` as well as `Authorization: Bearer` (`caller_of`).
The rules (normalisation, precedence, suffix matching) are the core's (`app.lookup`).

They are routes of the application itself, first in its list (`install`), not of an
included router: FastAPI matches a route of an included router twice (once to choose
the router, once within it), which cost a lookup 9 µs, a tenth of its time in `serve`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response

from pbx_connector.api.deps import at_once_or_quick, caller_of
from pbx_connector.errors import UsageError
from pbx_connector.models.lookup import LookupResult
from pbx_connector.models.tokens import Principal
from pbx_connector.service import App

#: The query parameters of both routes, for the OpenAPI document: the routes read them
#: from the query string themselves (`_asked`).
PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "number",
        "in": "query",
        "required": True,
        "schema": {"type": "string"},
        "description": "the caller's number in any usual form: +49 991 12345, 0991 12345, "
        "0049 991 12345, an internal number (101)",
    },
    {
        "name": "user",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "the called user (username or extension): their private phonebook "
        "comes first",
    },
    {
        "name": "token",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "an API token, for clients that cannot send Authorization: Bearer",
    },
]


def _plus(number: str) -> str:
    """A `+` that a PBX put in the URL without percent-encoding it arrives as a space (the
    query string is form-encoded): a number that starts with one space and a digit had
    a `+` there."""
    if number[:1] == " " and number[1:2].isdigit():
        return "+" + number[1:]
    return number


async def _asked(request: Request) -> tuple[App, Principal, str, str | None]:
    """The core, who asks, the number and the called user, read from the request by hand:
    FastAPI's solving of declared parameters and dependencies took longer than the
    lookup itself (docs/benchmarks.md), and a PBX asks for every call."""
    # FastAPI has read the query string already, for the parameters it would solve.
    query = request.query_params
    app: App = request.app.state.core
    who = await caller_of(request, app, query.get("token"))
    number = query.get("number")
    if number is None:
        raise UsageError("give the number to look up: ?number=…", field="number")
    return app, who, _plus(number), query.get("user")


async def lookup(request: Request) -> Response:
    """The record a number belongs to: the called user's private phonebook first, then
    the global phonebook, users and speed dials; 404 when none has it. A phone token
    opens its own user's private phonebook (403 for another `user`)."""
    app, who, number, user = await _asked(request)
    found: LookupResult = await at_once_or_quick(
        request,
        lambda: app.lookup.find_at_once(number, user=user, caller=who),
        lambda: app.lookup.find(number, user=user, caller=who),
        lambda: app.lookup.find_async(number, user=user, caller=who),
    )
    return Response(found.model_dump_json(), media_type="application/json")


async def lookup_text(request: Request) -> Response:
    """The name alone as plain text (UTF-8), an empty body when the number is unknown
    (or not a number): a dialplan shows the number then."""
    app, who, number, user = await _asked(request)
    name = await at_once_or_quick(
        request,
        lambda: app.lookup.name_at_once(number, user=user, caller=who),
        lambda: app.lookup.name(number, user=user, caller=who),
        lambda: app.lookup.name_async(number, user=user, caller=who),
    )
    return Response(name, media_type="text/plain; charset=utf-8")


def install(api: FastAPI) -> None:
    """Add `/lookup.txt` and `/lookup` to `api`, before every route it has: the most-asked
    routes are matched first."""
    before = list(api.router.routes)
    api.add_api_route(
        "/lookup.txt",
        lookup_text,
        methods=["GET"],
        tags=["lookup"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        openapi_extra={"parameters": PARAMETERS},
    )
    api.add_api_route(
        "/lookup",
        lookup,
        methods=["GET"],
        tags=["lookup"],
        response_model=LookupResult,
        responses={404: {"description": "no name"}},
        openapi_extra={"parameters": PARAMETERS},
    )
    added = [route for route in api.router.routes if route not in before]
    api.router.routes[:] = added + before
