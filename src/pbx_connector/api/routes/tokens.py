"""API tokens, and who the caller is."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from pbx_connector.api.deps import Core, Reader, Writer
from pbx_connector.models.base import Model
from pbx_connector.models.tokens import Principal, Role, TokenView
from pbx_connector.service.access import require_read

router = APIRouter(tags=["tokens"])


class TokenRequest(Model):
    name: str
    role: Role
    #: Default: the built-in admin; a `phone` token needs the phone's user.
    owner: str | None = None
    expires_days: int | None = None


@router.get("/me")
def me(who: Reader) -> Principal:
    return who


@router.get("/tokens")
def list_tokens(app: Core, who: Reader) -> dict[str, Any]:
    require_read(who.can_write, "tokens")
    items = app.tokens.list()
    return {"items": [t.model_dump(mode="json") for t in items], "total": len(items)}


@router.post("/tokens", status_code=201)
def create_token(body: TokenRequest, response: Response, app: Core, _: Writer) -> dict[str, Any]:
    """Create a token; the response is the only time `token` is shown."""
    new = app.tokens.create(
        body.name, role=body.role, owner=body.owner, expires_days=body.expires_days
    )
    response.headers["Location"] = f"/api/v1/tokens/{new.view.id}"
    return new.model_dump(mode="json")


@router.delete("/tokens/{token_id}", status_code=204)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=2**63 - 1)], app: Core, _: Writer
) -> Response:
    app.tokens.revoke(token_id)
    return Response(status_code=204)


__all__ = ["TokenView", "router"]
