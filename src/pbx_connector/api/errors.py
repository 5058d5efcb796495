"""One error body for every 4xx and 5xx, FastAPI's own validation errors included:

    {"error": {"status": 404, "code": "not_found", "message": "…", "field": null,
               "line": null, "errors": [{"field": …, "line": …, "message": …}]}}

A 500 never shows a traceback: the message says only that something failed."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from pbx_connector.errors import PbxConnectorError, RunLocked

log = logging.getLogger("pbx_connector.api")

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    422: "invalid",
    500: "internal_error",
    502: "source_error",
    503: "unavailable",
}


def _code(exc: Exception, status: int) -> str:
    if isinstance(exc, PbxConnectorError):
        # NotFoundError -> not_found, ConflictError -> conflict, …
        name = re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
        return name.removesuffix("_error") or _CODES.get(status, "error")
    return _CODES.get(status, "error")


def error_body(
    status: int,
    code: str,
    message: str,
    *,
    field: str | None = None,
    line: int | None = None,
    errors: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "error": {
            "status": status,
            "code": code,
            "message": message,
            "field": field,
            "line": line,
            "errors": errors or [],
            **extra,
        }
    }


#: Answers a PBX dialplan reads as the caller's name: an error there is an empty body with
#: its status, since a dialplan would show an error's JSON on the ringing phone.
_NAME_ONLY_PATHS = ("/lookup.txt",)


def _name_only(request: Request, status: int, headers: Mapping[str, str] | None) -> Response | None:
    if request.url.path not in _NAME_ONLY_PATHS:
        return None
    return Response("", status_code=status, media_type="text/plain; charset=utf-8", headers=headers)


def install(api: FastAPI) -> None:
    @api.exception_handler(PbxConnectorError)
    async def core_error(request: Request, exc: PbxConnectorError) -> Response:
        status = exc.http_status
        extra: dict[str, Any] = {}
        if isinstance(exc, RunLocked) and exc.running_run_id is not None:
            extra["running_run_id"] = exc.running_run_id
        body = error_body(
            status,
            _code(exc, status),
            exc.message,
            field=exc.field,
            line=exc.line,
            **extra,
        )
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return _name_only(request, status, headers) or JSONResponse(
            body, status_code=status, headers=headers
        )

    @api.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                # ("query", "limit") -> "limit": the field as the caller named it.
                "field": ".".join(str(p) for p in e.get("loc", ())[1:]) or None,
                "line": None,
                "message": str(e.get("msg", "invalid")),
            }
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": None, "message": "invalid request"}
        body = error_body(
            422, "invalid", str(first["message"]), field=first["field"], errors=errors
        )
        return _name_only(request, 422, None) or JSONResponse(body, status_code=422)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        status = exc.status_code
        body = error_body(status, _CODES.get(status, "error"), str(exc.detail))
        return _name_only(request, status, exc.headers) or JSONResponse(
            body, status_code=status, headers=exc.headers
        )

    @api.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server's log, never to the client.
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        body = error_body(500, "internal_error", "the server failed to answer this request")
        return JSONResponse(body, status_code=500)
