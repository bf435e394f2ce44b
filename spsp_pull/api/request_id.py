"""Every HTTP request gets an id: the client's `X-Request-Id` when it is a sane token, else a new one. The
response carries it back in `X-Request-Id`, and the log lines of the request carry it (see `logging_setup`).
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Awaitable, Callable

from aiohttp import web

from spsp_pull.logging_setup import REQUEST_ID

HEADER = "X-Request-Id"
# What may be echoed into a response header and a log line unchanged: short, no spaces or controls.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=@-]{1,128}")
_PROCESS_PREFIX = secrets.token_hex(6)  # ids made here: unique across processes, then a count
_made = itertools.count(1)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_id(offered: str | None) -> str:
    """`offered` if it is a sane token, else a new id."""
    if offered is not None and SANE_REQUEST_ID.fullmatch(offered):
        return offered
    return f"{_PROCESS_PREFIX}-{next(_made):x}"


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: the id is known to every log line of the handler and set on every response."""
    rid = request_id(request.headers.get(HEADER))
    token = REQUEST_ID.set(rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[HEADER] = rid
        raise
    finally:
        REQUEST_ID.reset(token)
    if not response.prepared:
        response.headers[HEADER] = rid
    return response
