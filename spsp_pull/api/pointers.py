"""Managing pull pointers: create, update, cancel, list, inspect (Bearer key of the owning account)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from spsp_pull.api.bodies import json_object
from spsp_pull.api.context import ApiContext, context
from spsp_pull.api.idempotency import idempotent
from spsp_pull.api.views import pointer_event_data, pointer_view, pull_view, version_view
from spsp_pull.domain.details_input import parse_detail_changes, parse_details
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.pull_refusal import Refusal
from spsp_pull.domain.terms_input import parse_changes, parse_terms
from spsp_pull.store import pointers
from spsp_pull.store.records import PointerRecord

MAX_PAGE = 200


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


async def create(request: web.Request) -> web.Response:
    account = await context(request).auth.account(request)
    return await _create(request, account.id)


@idempotent
async def _create(request: web.Request, account_id: int) -> web.Response:
    ctx = context(request)
    record = await create_for(ctx, account_id, await json_object(request))
    view = pointer_view(ctx.config, record, ctx.clock.now())
    view["warnings"] = await _warnings(ctx.rate_refusal, record.terms.asset_code)
    return json_response(view, status=201)


async def create_for(ctx: ApiContext, account_id: int, body: Mapping[str, object]) -> PointerRecord:
    """A new pointer of the account from the fields of a creation body (the API's JSON or the page's
    form): raises InputError for bad input, and then nothing is made."""
    now = ctx.clock.now()
    terms = parse_terms(body, now)
    details = parse_details(body, ctx.config.outbound_targets)
    record = await pointers.create_pointer(
        ctx.db,
        pointers.NewPointer(
            account_id=account_id,
            terms=terms,
            webhook=details.webhook,
            description=details.description,
            metadata=details.metadata,
        ),
        now,
        event_data=pointer_event_data(ctx.config),
    )
    ctx.metrics.pointer_created()
    return record


async def _warnings(
    rate_refusal: Callable[[str], Awaitable[Refusal | None]] | None, asset_code: str
) -> list[dict[str, str]]:
    """What a new pointer cannot do: pulls over ILP without a rate to the server's asset (it is still made:
    the payout bridge may serve it)."""
    why = None if rate_refusal is None else await rate_refusal(asset_code)
    if why is None:
        return []
    detail = f"{why.message}: pulls over ILP will be refused; payouts may still serve it"
    return [{"code": why.code, "detail": detail}]


async def update(request: web.Request) -> web.Response:
    account = await context(request).auth.account(request)
    return await _update(request, account.id)


@idempotent
async def _update(request: web.Request, account_id: int) -> web.Response:
    ctx = context(request)
    record = await update_for(ctx, account_id, request.match_info["token"], await json_object(request))
    return json_response(pointer_view(ctx.config, record, ctx.clock.now()))


async def update_for(
    ctx: ApiContext, account_id: int, token: str, body: Mapping[str, object]
) -> PointerRecord:
    """The account's pointer changed by the fields of an update body (the API's JSON or a page's form):
    raises InputError for bad input and PointerNotFound for another account's pointer, changing nothing."""
    changes = parse_changes(body)
    details = parse_detail_changes(body, ctx.config.outbound_targets)
    return await pointers.revise_pointer(
        ctx.db,
        account_id,
        token,
        changes,
        ctx.clock.now(),
        details=details,
        event_data=pointer_event_data(ctx.config),
    )


async def cancel(request: web.Request) -> web.Response:
    ctx = context(request)
    account = await ctx.auth.account(request)
    now = ctx.clock.now()
    record = await cancel_for(ctx, account.id, request.match_info["token"])
    return json_response(pointer_view(ctx.config, record, now))


async def cancel_for(ctx: ApiContext, account_id: int, token: str) -> PointerRecord:
    """The account's pointer cancelled now (and announced); PointerNotFound for another account's."""
    return await pointers.cancel_pointer(
        ctx.db, account_id, token, ctx.clock.now(), event_data=pointer_event_data(ctx.config)
    )


async def show(request: web.Request) -> web.Response:
    ctx = context(request)
    account = await ctx.auth.account(request)
    record = await pointers.owned_pointer(ctx.db, account.id, request.match_info["token"])
    view = pointer_view(ctx.config, record, ctx.clock.now())
    view["versions"] = [version_view(v) for v in await pointers.pointer_versions(ctx.db, record.id)]
    view["pulls"] = [pull_view(p) for p in await pointers.pointer_pulls(ctx.db, record.id)]
    return json_response(view)


async def index(request: web.Request) -> web.Response:
    ctx = context(request)
    account = await ctx.auth.account(request)
    limit = _query_int(request, "limit", 50, 1, MAX_PAGE)
    cursor = request.query.get("cursor")
    after_id = None
    if cursor is not None:
        if not cursor.isdigit():
            raise InputError(
                "invalid-cursor", "cursor must be the nextCursor of an earlier page.", status=400
            )
        after_id = int(cursor)
    records = await pointers.list_pointers(ctx.db, account.id, after_id=after_id, limit=limit + 1)
    page, more = records[:limit], len(records) > limit
    now = ctx.clock.now()
    return json_response(
        {
            "items": [pointer_view(ctx.config, r, now) for r in page],
            "nextCursor": str(page[-1].id) if more and page else None,
        }
    )


def _query_int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise InputError(f"invalid-{name}", f"{name} must be an integer from {low} to {high}.", status=400)
    return int(text)
