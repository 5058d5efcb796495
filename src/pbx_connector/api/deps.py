"""Who a request acts as: `Authorization: Bearer <token>`; writes need the admin role."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from pbx_connector.errors import Unauthenticated
from pbx_connector.models.tokens import Principal
from pbx_connector.service import App


def core(request: Request) -> App:
    app: App = request.app.state.core
    return app


def principal(request: Request, app: Annotated[App, Depends(core)]) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an API token: Authorization: Bearer <token>")
    return app.tokens.authenticate(token.strip())


def admin(
    who: Annotated[Principal, Depends(principal)], app: Annotated[App, Depends(core)]
) -> Principal:
    app.tokens.require_admin(who)
    return who


Core = Annotated[App, Depends(core)]
Reader = Annotated[Principal, Depends(principal)]
Writer = Annotated[Principal, Depends(admin)]
