"""Who a request acts as: `Authorization: Bearer <token>`; writes need the admin role.

Also how the most-asked reads run. FastAPI runs a plain `def` route, and each plain
dependency, in a pool of 40 threads. Forty threads doing a millisecond of Python each
mostly wait for the interpreter lock and hand it back and forth: at 16 concurrent
searches that tripled the time of each. So quick store reads (token checks, record
lists) run in `QUICK_READ_THREADS` threads of their own, one hop per request, while
slow calls (an LDAP test, a preview of a URL source) keep the big pool and never wait
behind them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import Depends, Request

from pbx_connector.errors import Unauthenticated
from pbx_connector.models.tokens import Principal
from pbx_connector.service import App

T = TypeVar("T")

#: Measured on 2 cores with 16 concurrent searches (docs/benchmarks.md): 1 thread 350
#: requests/s, 2 threads 330, the 40 threads of the shared pool 100. Two keep a second
#: read going while one waits for a PostgreSQL server.
QUICK_READ_THREADS = 2


def quick_reads() -> CapacityLimiter:
    return CapacityLimiter(QUICK_READ_THREADS)


async def core(request: Request) -> App:
    # async: a plain attribute read need not hop to a thread.
    app: App = request.app.state.core
    return app


async def quick(request: Request, call: Callable[[], T]) -> T:
    """`call` (a quick read of the store) in the threads of quick reads."""
    limiter: CapacityLimiter = request.app.state.quick_reads
    return await anyio.to_thread.run_sync(call, limiter=limiter)


async def principal(request: Request, app: Annotated[App, Depends(core)]) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an API token: Authorization: Bearer <token>")
    return await quick(request, lambda: app.tokens.authenticate(token.strip()))


def admin(
    who: Annotated[Principal, Depends(principal)], app: Annotated[App, Depends(core)]
) -> Principal:
    app.tokens.require_admin(who)
    return who


Core = Annotated[App, Depends(core)]
Reader = Annotated[Principal, Depends(principal)]
Writer = Annotated[Principal, Depends(admin)]
