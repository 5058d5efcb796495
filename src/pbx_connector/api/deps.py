"""Who a request acts as: `Authorization: Bearer <token>`; reads need the viewer or admin
role, writes the admin role. What a PBX or a phone asks (`LookupCaller`) also takes the
token as `?token=`, or a client address allowed by the instance setting `lookup_clients`,
and a token of the role `lookup`, which every other route refuses (403).

Also how the most-asked reads run. FastAPI runs a plain `def` route, and each plain
dependency, in a pool of 40 threads. Forty threads doing a millisecond of Python each
mostly wait for the interpreter lock and hand it back and forth: at 16 concurrent
searches that tripled the time of each. So quick store reads (token checks, record
lists) run in `QUICK_READ_THREADS` threads of their own, one hop per request, while
slow calls (an LDAP test, a preview of a URL source) keep the big pool and never wait
behind them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import Depends, Query, Request

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


async def at_once_or_quick(
    request: Request,
    at_once: Callable[[], T | None],
    call: Callable[[], T],
    on_loop: Callable[[], Awaitable[T | None]] | None = None,
) -> T:
    """`at_once()`, a core call that answers without waiting for anything (on the event
    loop: no hop to a thread, which costs more than an indexed read of SQLite); else
    `on_loop()`, one that awaits its round trips on the event loop (PostgreSQL); else
    `call` in the threads of quick reads, when neither can answer (None)."""
    found = at_once()
    if found is None and on_loop is not None:
        found = await on_loop()
    if found is not None:
        return found
    return await quick(request, call)


def _bearer(request: Request) -> str | None:
    """The token of an `Authorization: Bearer` header; None without the header."""
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send an API token: Authorization: Bearer <token>")
    return token.strip()


async def token_principal(request: Request, app: Annotated[App, Depends(core)]) -> Principal:
    """Whoever a bearer token acts as, whatever its role."""
    token = _bearer(request)
    if token is None:
        raise Unauthenticated("send an API token: Authorization: Bearer <token>")
    return await quick(request, lambda: app.tokens.authenticate(token))


async def principal(
    who: Annotated[Principal, Depends(token_principal)], app: Annotated[App, Depends(core)]
) -> Principal:
    """A token that may read the API: admin or viewer (a lookup token is refused)."""
    app.tokens.require_reader(who)
    return who


def admin(
    who: Annotated[Principal, Depends(principal)], app: Annotated[App, Depends(core)]
) -> Principal:
    app.tokens.require_admin(who)
    return who


#: `?token=` of a lookup or directory URL: for PBXes and phones that cannot send headers.
#: It is a secret in a URL: nothing here logs URLs (`serve` runs without an access log).
QueryToken = Annotated[
    str | None,
    Query(
        alias="token",
        description="an API token, for clients that cannot send Authorization: Bearer",
    ),
]


async def lookup_caller(
    request: Request, app: Annotated[App, Depends(core)], token: QueryToken = None
) -> Principal:
    """Who may look up numbers and read the desk-phone directories: a token of any role
    (admin, viewer, lookup) sent as `Authorization: Bearer` or as `?token=`; or, with no
    token at all, a client whose address is in the instance setting `lookup_clients`
    (it acts as username "", role `lookup`, no token). A token that is sent but not
    valid is refused even from such an address."""
    return await caller_of(request, app, token)


async def caller_of(request: Request, app: App, token: str | None) -> Principal:
    """`lookup_caller` for a route that reads `?token=` itself (`token`)."""
    given = _bearer(request)
    if given is None and token is not None:
        given = token.strip()
    if given is not None:
        found = given
        # Checked a moment ago: no store read, and no hop to a thread (which costs more
        # than the check itself with 16 requests in flight).
        known = app.tokens.cached(found)
        if known is not None:
            return known
        return await quick(request, lambda: app.tokens.authenticate(found))
    address = request.client.host if request.client is not None else ""
    if await quick(request, lambda: app.lookup.allows_client(address)):
        return Principal(username="", role="lookup")
    raise Unauthenticated(
        "send an API token (Authorization: Bearer <token>, or ?token=<token>), "
        "or ask from an address in the setting lookup_clients"
    )


Core = Annotated[App, Depends(core)]
Reader = Annotated[Principal, Depends(principal)]
Writer = Annotated[Principal, Depends(admin)]
#: Any valid bearer token, lookup tokens included (a route that takes it decides).
AnyToken = Annotated[Principal, Depends(token_principal)]
#: A caller of `/lookup` and `/directory/…` (see `lookup_caller`).
LookupCaller = Annotated[Principal, Depends(lookup_caller)]
