"""Caller-name lookup for PBXes: `GET /lookup` (JSON) and `GET /lookup.txt` (the name alone,
for a dialplan). Top-level paths, not under `/api/v1`: they are what a PBX is pointed at,
and they take the token as `?token=` as well as `Authorization: Bearer` (`LookupCaller`).
The rules (normalisation, precedence, suffix matching) are the core's (`app.lookup`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from pbx_connector.api.deps import Core, LookupCaller, quick
from pbx_connector.models.lookup import LookupResult

router = APIRouter(tags=["lookup"])

Number = Annotated[
    str,
    Query(
        description="the caller's number in any usual form: +49 991 12345, 0991 12345, "
        "0049 991 12345, an internal number (101)",
    ),
]
User = Annotated[
    str | None,
    Query(
        description="the called user (username or extension): their private phonebook comes first",
    ),
]


def _plus(number: str) -> str:
    """A `+` that a PBX put in the URL without percent-encoding it arrives as a space (the
    query string is form-encoded): a number that starts with one space and a digit had
    a `+` there."""
    if number[:1] == " " and number[1:2].isdigit():
        return "+" + number[1:]
    return number


@router.get("/lookup", response_model=LookupResult, responses={404: {"description": "no name"}})
async def lookup(
    request: Request, app: Core, who: LookupCaller, number: Number, user: User = None
) -> Response:
    """The record a number belongs to: the called user's private phonebook first, then
    the global phonebook, users and speed dials; 404 when none has it. A phone token
    opens its own user's private phonebook (403 for another `user`)."""
    found: LookupResult = await quick(
        request, lambda: app.lookup.find(_plus(number), user=user, caller=who)
    )
    return Response(found.model_dump_json(), media_type="application/json")


@router.get(
    "/lookup.txt",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def lookup_text(
    request: Request, app: Core, who: LookupCaller, number: Number, user: User = None
) -> Response:
    """The name alone as plain text (UTF-8), an empty body when the number is unknown
    (or not a number): a dialplan shows the number then."""
    name = await quick(request, lambda: app.lookup.name(_plus(number), user=user, caller=who))
    return Response(name, media_type="text/plain; charset=utf-8")
