"""Desk-phone directories: `GET /directory/{vendor}.xml` in each vendor's remote-phonebook
format, and the same directory as `GET /directory/contacts.vcf` and `contacts.csv`.

Top-level paths, not under `/api/v1`: they are what a phone is pointed at, and they take
the token as `?token=` as well as `Authorization: Bearer` (`LookupCaller`), since phones
put credentials in URLs. Nothing here logs a URL or its query string (`serve` runs
without an access log). Which entries a directory holds, and how each phone wants them,
is the core's (`app.deskphones`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from pbx_connector.api.deps import Core, LookupCaller
from pbx_connector.service.deskphones import DirectoryQuery, PhonePage, phone_search

router = APIRouter(prefix="/directory", tags=["directory"])

#: A directory holds names and numbers, and its URL may hold a token: no cache keeps it.
_HEADERS = {"Cache-Control": "no-store"}
#: The largest offset, first or count taken (pages beyond the directory are empty).
_MAX = 2**31 - 1

Search = Annotated[
    str | None,
    Query(
        description="only entries with this text inside a name, organisation, e-mail or "
        "number (Yealink: q=#SEARCH; with q, Fanvil answers with search results)",
    ),
]
UserRef = Annotated[
    str | None,
    Query(
        description="a username (or user id): that user's private phonebook comes first "
        "(a phone token: always its own user's)"
    ),
]
WithUsers = Annotated[bool, Query(description="also the users (enabled ones, with a number)")]
WithSpeedDials = Annotated[bool, Query(description="also the speed dials")]
Offset = Annotated[
    int,
    Query(
        ge=0,
        le=_MAX,
        description="the first item of the page (Cisco, Snom, Fanvil results): what the "
        "Next and Previous soft keys ask for",
    ),
]
GigasetField = Annotated[str | None, Query(description="Gigaset search field (`*` is a wildcard)")]

_XML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/xml": {"schema": {"type": "string"}}}}
}


async def _directory_query(
    who: LookupCaller,
    q: Search = None,
    user: UserRef = None,
    users: WithUsers = False,
    speeddials: WithSpeedDials = False,
) -> DirectoryQuery:
    """Who asks and the parameters every directory takes, read once for all its routes."""
    return DirectoryQuery(search=q, user=user, users=users, speeddials=speeddials, caller=who)


Asked = Annotated[DirectoryQuery, Depends(_directory_query)]


def _page_url(request: Request) -> Callable[[int], str]:
    """Next and Previous open this same URL (its token and search kept) at another offset."""
    return lambda offset: str(request.url.include_query_params(offset=offset))


@router.get(
    "/contacts.vcf",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/vcard": {"schema": {"type": "string"}}}}},
    summary="The directory as vCard 3.0",
)
def contacts_vcf(
    app: Core,
    asked: Asked,
) -> StreamingResponse:
    """Every entry of the directory as vCard 3.0 (RFC 2426), for softphones and mobile
    clients."""
    exported = app.deskphones.export("vcf", asked)
    return StreamingResponse(exported.parts, media_type=exported.media_type, headers=_HEADERS)


@router.get(
    "/contacts.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
    summary="The directory as CSV",
)
def contacts_csv(
    app: Core,
    asked: Asked,
) -> StreamingResponse:
    """Every entry of the directory as CSV: id, displayname, givenname, surname,
    organisation, work, mobile, home, other."""
    exported = app.deskphones.export("csv", asked)
    return StreamingResponse(exported.parts, media_type=exported.media_type, headers=_HEADERS)


@router.get(
    "/gigaset.xml", response_class=Response, responses=_XML, summary="Gigaset online directory"
)
def gigaset(
    app: Core,
    asked: Asked,
    first: Annotated[int, Query(ge=1, le=_MAX, description="first entry (1-based)")] = 1,
    count: Annotated[int | None, Query(ge=1, le=_MAX, description="entries wanted")] = None,
    list_type: Annotated[
        str, Query(alias="type", max_length=16, description="echoed: pb, pr or yp")
    ] = "pb",
    hm: GigasetField = None,
    nr: GigasetField = None,
    mb: GigasetField = None,
    ln: GigasetField = None,
    fn: GigasetField = None,
) -> Response:
    """The Gigaset Phonebook Search Protocol (`command=get_list`): the search is `q`, or
    else the first of `hm`, `nr`, `mb`, `ln`, `fn` that holds more than `*`; `first` and
    `count` page."""
    search, searched = phone_search(
        asked.search, {"hm": hm, "nr": nr, "mb": mb, "ln": ln, "fn": fn}
    )
    page = PhonePage(offset=first - 1, count=count, list_type=list_type, searched=searched)
    rendered = app.deskphones.render("gigaset", replace(asked, search=search), page)
    return Response(rendered.content, media_type=rendered.media_type, headers=_HEADERS)


@router.get(
    "/grandstream/phonebook.xml",
    response_class=Response,
    responses=_XML,
    summary="Grandstream phonebook under the name the phone asks for",
)
def grandstream_phonebook(
    app: Core,
    asked: Asked,
) -> Response:
    """`/directory/grandstream.xml` at the path a Grandstream phone builds: it appends
    `phonebook.xml` to its "Phonebook XML Server Path"."""
    rendered = app.deskphones.render("grandstream", asked)
    return Response(rendered.content, media_type=rendered.media_type, headers=_HEADERS)


@router.get(
    "/{vendor}/search.xml",
    response_class=Response,
    responses={**_XML, 404: {"description": "no search form for this vendor"}},
    summary="A desk phone's search form",
)
def search_screen(
    vendor: str,
    request: Request,
    app: Core,
    _kept: Asked,  # checked here; the form's URL carries them on
) -> Response:
    """The search form of Cisco (`CiscoIPPhoneInput`), Snom (`SnomIPPhoneInput`) and
    Fanvil (`FanvilIPPhoneInputScreen`) phones: it asks for a name or number and opens
    `/directory/{vendor}.xml` with it as `q`, keeping the other parameters (the token,
    `user`, `users`, `speeddials`). An empty search lists everything."""
    target = request.url.replace(path=f"/directory/{vendor}.xml")
    url = str(target.remove_query_params(["q", "offset"]))
    rendered = app.deskphones.search_screen(vendor, url)
    return Response(rendered.content, media_type=rendered.media_type, headers=_HEADERS)


@router.get(
    "/{vendor}.xml",
    response_class=Response,
    responses={**_XML, 404: {"description": "no directory format for this vendor"}},
    summary="A desk phone's directory",
)
def directory(
    vendor: str,
    request: Request,
    app: Core,
    asked: Asked,
    offset: Offset = 0,
) -> Response:
    """The directory in `vendor`'s format: yealink, snom, grandstream, cisco, fanvil,
    gigaset or polycom (404 for another)."""
    page = PhonePage(offset=offset, page_url=_page_url(request))
    rendered = app.deskphones.render(vendor, asked, page)
    return Response(rendered.content, media_type=rendered.media_type, headers=_HEADERS)
