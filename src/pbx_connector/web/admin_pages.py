"""The instance's pages: Authentication (settings, Test Authentication, the log) and
Settings (instance settings, API tokens)."""

from __future__ import annotations

from fastapi import APIRouter

from pbx_connector.web.routing import HtmlRoute

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)
