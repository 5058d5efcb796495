"""The Import page (`/import`): a CSV or xlsx file imported once into users, the phonebook
or speed dials, without a profile (the seed's "Data import per xlsx file"); a dry run
first if wanted; and the template file of each target to fill in. The core
(`app.imports`) does the work; the page shows its result: the counts, and each invalid
row by its cell (`Phonebook!B7`) or line, with the field and what is wrong."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from pbx_connector.errors import PbxConnectorError
from pbx_connector.models.imports import ImportResult
from pbx_connector.models.sessions import WebSession
from pbx_connector.web.render import page
from pbx_connector.web.routing import HtmlRoute, Viewer, Writer, core, read_form

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

#: The targets, in the seed's order, with the words the page uses.
TARGETS: dict[str, str] = {"users": "Users", "phonebook": "Phonebook", "speeddials": "Speed dials"}


def _import_page(
    request: Request,
    session: WebSession,
    *,
    status_code: int = 200,
    target: str = "phonebook",
    dry_run: bool = True,
    result: ImportResult | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    app = core(request)
    columns: dict[str, Any] = {t: app.imports.template_columns(t) for t in TARGETS}
    return page(
        request,
        "import.html",
        session,
        status_code=status_code,
        nav="import",
        targets=TARGETS,
        columns=columns,
        target=target,
        dry_run=dry_run,
        result=result,
        errors=errors or {},
    )


@router.get("/import")
def import_form(request: Request, session: Viewer) -> Response:
    return _import_page(request, session)


@router.post("/import")
async def import_file(request: Request, session: Writer) -> Response:
    form = await read_form(request)
    target = form.get("target")
    dry_run = form.get("dry_run") in ("on", "yes", "true", "1")
    upload = form.files.get("file")
    keep: dict[str, Any] = {"target": target if target in TARGETS else "phonebook"}
    keep["dry_run"] = dry_run
    if target not in TARGETS:
        return _import_page(
            request,
            session,
            status_code=422,
            errors={"target": "choose what the file holds"},
            **keep,
        )
    if upload is None or not upload.filename:
        return _import_page(
            request, session, status_code=422, errors={"file": "choose a file"}, **keep
        )
    try:
        result = await run_in_threadpool(
            core(request).imports.run, upload.file, upload.filename, target, dry_run=dry_run
        )
    except PbxConnectorError as exc:
        field = "target" if exc.field == "target" else "file"
        return _import_page(
            request, session, status_code=exc.http_status, errors={field: str(exc)}, **keep
        )
    finally:
        await upload.close()
    refused = not result.applied and not dry_run and result.rows > 0
    return _import_page(
        request, session, status_code=422 if refused else 200, result=result, **keep
    )


@router.get("/import/template/{target}.xlsx")
def import_template(request: Request, target: str, session: Viewer) -> Response:
    """The file to fill in for an import into `target`."""
    template = core(request).imports.template(target, "xlsx")
    return Response(
        template.content,
        media_type=template.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{template.filename}"',
            "Cache-Control": "no-store",
        },
    )
