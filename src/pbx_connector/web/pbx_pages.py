"""The Phone system page: "who is calling from this number?" answered as the PBX gets it
(`app.lookup`), and the URLs to point a PBX and each desk phone at.

Read-only (a GET form), so viewers may use it too. It looks up as the command
`pbx-connector lookup` does, with the signed-in user's view of every private phonebook;
the URLs are this server's, as the browser reached it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from pbx_connector.errors import NotFoundError, UsageError
from pbx_connector.models.lookup import LookupResult
from pbx_connector.service.words import lookup_match, lookup_source
from pbx_connector.web.render import page
from pbx_connector.web.routing import HtmlRoute, Viewer, core

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

#: The longest input the form takes back into the page (the core refuses longer numbers).
_ECHO = 200


@router.get("/pbx")
def pbx(request: Request, session: Viewer, number: str = "", user: str = "") -> Response:
    app = core(request)
    found: LookupResult | None = None
    unknown = ""
    errors: dict[str, str] = {}
    asked = bool(number.strip())
    if asked:
        try:
            found = app.lookup.find(number, user=user.strip() or None)
        except NotFoundError as exc:
            unknown = exc.message
        except UsageError as exc:
            errors[exc.field or "number"] = exc.message
    base = str(request.base_url).rstrip("/")
    config = app.catalog.config()
    return page(
        request,
        "pbx.html",
        session,
        status_code=422 if errors else 200,
        number=number[:_ECHO],
        user=user[:_ECHO],
        asked=asked,
        found=found,
        source=lookup_source(found) if found else "",
        match=lookup_match(found) if found else "",
        unknown=unknown,
        errors=errors,
        base=base,
        vendors=app.deskphones.vendors(),
        search_forms=app.deskphones.with_search_form(),
        exports=app.deskphones.exports(),
        lookup_match=config.lookup_match,
        lookup_suffix_digits=config.lookup_suffix_digits,
        lookup_clients=config.lookup_clients,
    )
