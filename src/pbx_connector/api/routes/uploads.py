"""The file a profile reads when `upload=yes`: upload it (`PUT`), see what was uploaded
(`GET`). Every route is one call into `app.uploads`.

The file is the request body as it is (any content type but multipart; its name from
`?filename=` or a `Content-Disposition` header), or the `file` part of a
`multipart/form-data` body. The body is received into a temporary file (in memory up to
1 MiB, owner-only on disk beyond) and no further than `MAX_UPLOAD_BYTES`."""

from __future__ import annotations

import re
import tempfile
from typing import IO, Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from pbx_connector.api.deps import Core, Reader, Writer
from pbx_connector.errors import NotFoundError, TooLargeError, UsageError
from pbx_connector.models.uploads import UploadInfo
from pbx_connector.service.uploads import MAX_UPLOAD_BYTES

router = APIRouter(tags=["uploads"])

_IN_MEMORY = 1024 * 1024
_DISPOSITION = re.compile(r"""filename\*?=(?:UTF-8''|"?)([^";]+)"?""", re.IGNORECASE)


def _too_large() -> TooLargeError:
    return TooLargeError(
        f"the file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB, the most an "
        "upload may be",
        field="file",
    )


def _declared_length(request: Request) -> None:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_UPLOAD_BYTES + _IN_MEMORY:
        raise _too_large()


async def _multipart_file(request: Request) -> tuple[IO[bytes], str]:
    try:
        form = await request.form(max_files=1, max_fields=10, max_part_size=MAX_UPLOAD_BYTES)
    except Exception as exc:  # starlette's own errors for a malformed or too large body
        raise UsageError(f"the multipart body could not be read: {exc}", field="file") from None
    part = form.get("file")
    if not isinstance(part, UploadFile):
        raise UsageError('send the file as the multipart part "file"', field="file")
    return part.file, part.filename or "upload"


async def _raw_body(request: Request) -> IO[bytes]:
    body = tempfile.SpooledTemporaryFile(max_size=_IN_MEMORY)  # noqa: SIM115 - returned
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_UPLOAD_BYTES:
                raise _too_large()
            body.write(chunk)
    except BaseException:
        body.close()
        raise
    body.seek(0)
    return body


def _filename(request: Request, given: str | None) -> str:
    if given:
        return given
    match = _DISPOSITION.search(request.headers.get("content-disposition", ""))
    return match.group(1).strip() if match else "upload"


async def received_file(request: Request, filename: str | None) -> tuple[IO[bytes], str]:
    """The file a request carries (see the module's notes) and its name; the caller
    closes it."""
    _declared_length(request)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _multipart_file(request)
    return await _raw_body(request), _filename(request, filename)


@router.put("/profiles/{name}/upload")
async def upload_file(
    name: str,
    request: Request,
    app: Core,
    _: Writer,
    filename: Annotated[
        str | None, Query(description="the file's name, for a raw body (e.g. phonebook.xlsx)")
    ] = None,
) -> dict[str, Any]:
    """Upload the file the profile reads; it then reads it (`upload=yes`), and `format`
    follows the name's extension (`.xlsx`: xlsx; `.csv`, `.txt`: csv)."""
    stream, original = await received_file(request, filename)
    try:
        info: UploadInfo = await run_in_threadpool(app.uploads.upload, name, stream, original)
    finally:
        stream.close()
    return info.model_dump(mode="json")


@router.get("/profiles/{name}/upload")
def upload_info(name: str, app: Core, _: Reader) -> dict[str, Any]:
    """What was last uploaded to the profile: name, size, sha256, uploaded_at, format."""
    info = app.uploads.info(name)
    if info is None:
        raise NotFoundError(f"nothing has been uploaded to the profile {name!r} yet")
    return info.model_dump(mode="json")
