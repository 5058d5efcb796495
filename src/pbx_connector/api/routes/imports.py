"""One-off import of a CSV or xlsx file, without a profile (`POST /import`), and the file
to fill in for it (`GET /import/template/{target}.xlsx`). Each is one call into
`app.imports`.

The file is sent as for an upload (see `routes.uploads`): the raw body with
`?filename=`, or the `file` part of a multipart form. An import that a row refuses
(invalid, or clashing with a record that exists) answers 422 in the one error shape,
with each row's problem in `errors` and the whole result in `result`; nothing is
imported then."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from pbx_connector.api.deps import Core, Reader, Writer
from pbx_connector.api.errors import error_body
from pbx_connector.api.routes.uploads import received_file
from pbx_connector.models.imports import ImportResult

router = APIRouter(tags=["import"])

Target = Literal["users", "phonebook", "speeddials"]


@router.post("/import", response_model=None)
async def import_file(
    request: Request,
    app: Core,
    _: Writer,
    target: Annotated[Target, Query(description="what the file holds")],
    dry_run: Annotated[bool, Query(description="only say what would be imported")] = False,
    filename: Annotated[
        str | None, Query(description="the file's name, for a raw body (phonebook.xlsx)")
    ] = None,
) -> dict[str, Any] | JSONResponse:
    """Import a file once: 200 with the result (`applied`: whether it was written); 422
    when a row is invalid or clashes (nothing imported), or the file cannot be read."""
    stream, original = await received_file(request, filename)
    try:
        result: ImportResult = await run_in_threadpool(
            app.imports.run, stream, original, target, dry_run=dry_run
        )
    finally:
        stream.close()
    body = result.model_dump(mode="json")
    if dry_run or result.applied or not result.rows:
        return body
    first = result.errors[0] if result.errors else None
    errors = [
        {"field": p.field, "line": p.line, "message": p.message, "where": p.where}
        for p in result.errors
    ]
    return JSONResponse(
        error_body(
            422,
            "import_refused",
            result.message,
            field=first.field if first else None,
            line=first.line if first else None,
            errors=errors,
            result=body,
        ),
        status_code=422,
    )


@router.get(
    "/import/template/{target}.xlsx",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def import_template(target: Target, app: Core, _: Reader) -> Response:
    """The xlsx file to fill in for an import into `target`: its columns and one
    example row."""
    template = app.imports.template(target, "xlsx")
    return Response(
        template.content,
        media_type=template.media_type,
        headers={"Content-Disposition": f'attachment; filename="{template.filename}"'},
    )
