"""The records' pages: Users, the Phonebook (global and private) and Speed dials."""

from __future__ import annotations

from fastapi import APIRouter

from pbx_connector.web.routing import HtmlRoute

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)
