"""The public SPSP side: pull-pointer queries (RFC 0009 + RFC 0036), offline JWT pointers, push endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from spsp_pull.api.context import ApiContext, context
from spsp_pull.api.pointers import json_response
from spsp_pull.api.views import pointer_view, spsp_view
from spsp_pull.ilp.receiver_address import PUSH_TAG
from spsp_pull.metrics import elapsed_since
from spsp_pull.offline_pointers import open_offline_pointer
from spsp_pull.store import pointers
from spsp_pull.store.records import PointerRecord
from spsp_pull.web.negotiation import prefers_html

SPSP_CONTENT_TYPE = "application/spsp4+json"
SPSP_HEADERS = {
    "Cache-Control": "no-cache",
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "web-monetization-id",
}
ANSWER_HEADERS = (("Content-Type", SPSP_CONTENT_TYPE), *SPSP_HEADERS.items())
NOT_FOUND_BODY = json.dumps({"id": "InvalidPointerError", "message": "Pointer does not exist."})
# The page `GET /<token>` answers a browser with (one that prefers HTML); SPSP clients get the SPSP answer.
PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
POINTER_PAGE: web.AppKey[PageHandler] = web.AppKey("pointer_page")


@dataclass(frozen=True, slots=True)
class SpspAnswer:
    """An SPSP response, independent of the HTTP server that sends it."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]

    def response(self) -> web.Response:
        return web.Response(status=self.status, body=self.body, headers=self.headers)


def spsp_answer(body: object, status: int = 200, *, retry_after: str | None = None) -> SpspAnswer:
    headers = ANSWER_HEADERS if retry_after is None else (*ANSWER_HEADERS, ("Retry-After", retry_after))
    return SpspAnswer(status, (body if isinstance(body, str) else json.dumps(body)).encode(), headers)


NOT_FOUND = spsp_answer(NOT_FOUND_BODY, status=404)
NOT_CONNECTED = spsp_answer(
    {"id": "ServiceUnavailable", "message": "Not connected to the Interledger network."},
    status=503,
    retry_after="1",
)


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


async def query(request: web.Request) -> web.StreamResponse:
    if prefers_html(request.headers.get("Accept")) and (page := request.app.get(POINTER_PAGE)) is not None:
        return await page(request)
    ctx = context(request)
    token = request.match_info["token"]
    if looks_like_jwt(token):
        started = time.perf_counter_ns()
        record = await register_offline(ctx, token)
        answer = _answer(ctx, record.tag, record)
        ctx.metrics.query_took(elapsed_since(started))
        return answer.response()
    return (await answer_query(ctx, token)).response()


async def answer_query(ctx: ApiContext, token: str) -> SpspAnswer:
    """The answer to `GET /<token>` for a pointer token (not an offline JWT)."""
    started = time.perf_counter_ns()
    record = await pointers.find_by_token(ctx.db, token)
    answer = NOT_FOUND if record is None else _answer(ctx, record.tag, record)
    ctx.metrics.query_took(elapsed_since(started))
    return answer


async def push_endpoint(request: web.Request) -> web.Response:
    return _answer(context(request), PUSH_TAG, None).response()


async def register(request: web.Request) -> web.Response:
    """POST /<jwt>: register an offline pointer ahead of its first pull."""
    ctx = context(request)
    token = request.match_info["token"]
    if not looks_like_jwt(token):
        raise web.HTTPMethodNotAllowed("POST", ["GET", "OPTIONS"])
    record = await register_offline(ctx, token)
    return json_response(pointer_view(ctx.config, record, ctx.clock.now()), status=201)


async def preflight(_request: web.Request) -> web.Response:
    return web.Response(
        status=204,
        headers={
            **SPSP_HEADERS,
            "Access-Control-Allow-Methods": "GET, OPTIONS",
            "Access-Control-Max-Age": "86400",
        },
    )


async def register_offline(ctx: ApiContext, token: str) -> PointerRecord:
    assert ctx.admin_account_id is not None
    return await open_offline_pointer(
        ctx.db,
        token,
        hs256_secret=ctx.config.jwt_secret,
        admin_account_id=ctx.admin_account_id,
        now=ctx.clock.now(),
        targets=ctx.config.outbound_targets,
    )


def _answer(ctx: ApiContext, tag: str, record: PointerRecord | None) -> SpspAnswer:
    address = ctx.ilp.address
    if address is None or not ctx.ilp.ready:
        return NOT_CONNECTED
    ctx.metrics.query_answered()
    return spsp_answer(spsp_view(ctx.addresses.issue(address, tag), record, ctx.clock.now()))
