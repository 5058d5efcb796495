"""The API application: routes under `/api/v1`, one error shape, OpenAPI at
`/api/v1/openapi.json`. No interactive page that would load files from a CDN."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from pbx_connector import web
from pbx_connector.api import errors
from pbx_connector.api.routes import auth, imports, profiles, records, runs, tokens, uploads
from pbx_connector.service import App
from pbx_connector.service.executor import RunExecutor

PREFIX = "/api/v1"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pbx-connector")
    except PackageNotFoundError:  # a source tree that is not installed
        return "0+unknown"


def create_api(core: App) -> FastAPI:
    executor = RunExecutor(core)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Runs asked for before a restart are carried out now (or dropped when stale).
        executor.resume_queued()
        yield
        executor.shutdown()

    api = FastAPI(
        title="pbx-connector",
        version=_version(),
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    api.state.core = core
    api.state.executor = executor
    errors.install(api)
    v1 = APIRouter(prefix=PREFIX)
    for module in (profiles, runs, records, auth, tokens, uploads, imports):
        v1.include_router(module.router)
    api.include_router(v1)
    web.install(api)
    return api
