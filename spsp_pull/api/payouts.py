"""The payout API (aiohttp). Two ways in, one flow:

- the pointer's owner (the payer's wallet), with its Bearer key: `/pointers/{token}/payouts…`, and
  `GET /payouts` across all its pointers;
- the payee, with the pointer itself as the capability (as for an SPSP pull, whoever holds the pointer
  may pull from it): `/{token}/payouts…`, `/{token}/payout-limits`, and LNURL-withdraw `/{token}/lnurlw`.
  An offline (JWT) pointer is verified and registered on first use, as for its SPSP query.

Either side may create, approve and cancel the pointer's payouts: the agreement already authorises
pulls up to its allowance, and an offer only fixes the rate and the debit. POSTs accept
`Idempotency-Key`, scoped to the owner's account or, for the payee, to the pointer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime

from aiohttp import web

from spsp_pull.api.bodies import json_object
from spsp_pull.api.context import context
from spsp_pull.api.idempotency import idempotent
from spsp_pull.api.spsp import looks_like_jwt, register_offline
from spsp_pull.bridge.amounts import Rail
from spsp_pull.bridge.inputs import RAILS, parse_offer_request
from spsp_pull.bridge.lnurl import LnurlError, encode_lnurl, lnurlw_uri
from spsp_pull.bridge.service import Bridge, BridgeNotReady
from spsp_pull.bridge.views import event_view, payout_view
from spsp_pull.domain.clock import parse_timestamp
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.states import PayoutStatus
from spsp_pull.store import payouts as store
from spsp_pull.store.accounts import new_signing_secret
from spsp_pull.store.payouts import PayoutFilter, PayoutRecord
from spsp_pull.store.pointers import PointerNotFound, find_by_token, owned_pointer
from spsp_pull.store.records import PointerRecord

OWNER_PREFIX = "/pointers/{token}"
PAYEE_PREFIX = "/{token}"
MAX_PAGE = 200
DEFAULT_PAGE = 20
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PAYOUT_ID = re.compile(r"[0-9a-fA-F-]{1,36}")

Action = Callable[[web.Request, "Scope"], Awaitable[web.Response]]


@dataclass(frozen=True)
class Scope:
    pointer: PointerRecord
    actor: str  # "owner" or "payee"
    namespace: int  # the Idempotency-Key namespace: the account, or minus the pointer id


def add_payout_routes(router: web.UrlDispatcher) -> None:
    """Register the payout routes (none of them clashes with the catch-all `/{token}`)."""
    router.add_get("/payouts", list_account_payouts)
    for prefix, payee in ((OWNER_PREFIX, False), (PAYEE_PREFIX, True)):
        router.add_post(f"{prefix}/payouts", _scoped(create_payout, payee, write=True))
        router.add_get(f"{prefix}/payouts", _scoped(list_payouts, payee))
        router.add_get(f"{prefix}/payouts/{{payoutId}}", _scoped(show_payout, payee))
        router.add_post(f"{prefix}/payouts/{{payoutId}}/approve", _scoped(approve_payout, payee, write=True))
        router.add_post(f"{prefix}/payouts/{{payoutId}}/cancel", _scoped(cancel_payout, payee, write=True))
        router.add_get(f"{prefix}/payouts/{{payoutId}}/events", _scoped(payout_events, payee))
        router.add_get(f"{prefix}/payout-limits", _scoped(payout_limits, payee))
    router.add_get(f"{PAYEE_PREFIX}/lnurlw", lnurl_withdraw_request)
    router.add_get(f"{PAYEE_PREFIX}/lnurlw/callback", lnurl_withdraw_callback)


def json_response(body: object, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(body), content_type="application/json")


def _bridge(request: web.Request) -> Bridge:
    bridge: Bridge | None = context(request).bridge
    if bridge is None:
        raise InputError("payouts-disabled", "This server has no payout backend configured.", status=503)
    if not bridge.ready:
        raise InputError(
            "payouts-unavailable", "The payout backends have not answered yet; retry shortly.", status=503
        )
    return bridge


def _scoped(
    action: Action, payee: bool, *, write: bool = False
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        _bridge(request)
        scope = await (_payee_scope(request) if payee else _owner_scope(request))
        if not write:
            return await action(request, scope)

        async def run(inner: web.Request, _namespace: int) -> web.Response:
            return await action(inner, scope)

        return await idempotent(run)(request, scope.namespace)

    return handler


async def _owner_scope(request: web.Request) -> Scope:
    ctx = context(request)
    account = await ctx.auth.account(request)
    pointer = await owned_pointer(ctx.db, account.id, request.match_info["token"])
    return Scope(pointer, "owner", account.id)


async def _payee_scope(request: web.Request) -> Scope:
    ctx = context(request)
    token = request.match_info["token"]
    pointer = (
        await register_offline(ctx, token) if looks_like_jwt(token) else await find_by_token(ctx.db, token)
    )
    if pointer is None:
        raise PointerNotFound(token)
    return Scope(pointer, "payee", -pointer.id)


async def _payout_of(request: web.Request, scope: Scope) -> PayoutRecord:
    public_id = request.match_info["payoutId"]
    found = None
    if _PAYOUT_ID.fullmatch(public_id):
        found = await store.find_payout(context(request).db, public_id=public_id.lower())
    if found is None or found.pointer_id != scope.pointer.id:
        raise InputError("payout-not-found", "No payout with this id belongs to this pointer.", status=404)
    return found


# -- handlers --------------------------------------------------------------------------------------


async def create_payout(request: web.Request, scope: Scope) -> web.Response:
    bridge = _bridge(request)
    offer = parse_offer_request(await json_object(request), context(request).config.outbound_targets)
    if offer.notification_url is not None:
        # The payout's own key for its notifications: whoever gave the URL learns no one else's.
        offer = replace(offer, notification_secret=new_signing_secret())
    try:
        record = await bridge.create(scope.pointer, offer, created_by=scope.actor)
    except BridgeNotReady as exc:
        raise InputError("payouts-unavailable", str(exc), status=503) from None
    view = payout_view(record)
    if offer.notification_secret is not None:
        view["notificationSecret"] = offer.notification_secret  # shown this once, never again
    return json_response(view, status=201)


async def approve_payout(request: web.Request, scope: Scope) -> web.Response:
    await json_object(request, allow_empty=True)
    payout = await _payout_of(request, scope)
    return json_response(payout_view(await _bridge(request).approve(payout, by=scope.actor)))


async def cancel_payout(request: web.Request, scope: Scope) -> web.Response:
    await json_object(request, allow_empty=True)
    payout = await _payout_of(request, scope)
    return json_response(payout_view(await _bridge(request).cancel(payout, by=scope.actor)))


async def show_payout(request: web.Request, scope: Scope) -> web.Response:
    return json_response(payout_view(await _payout_of(request, scope)))


async def payout_events(request: web.Request, scope: Scope) -> web.Response:
    payout = await _payout_of(request, scope)
    events = await store.payout_events(context(request).db, payout.id)
    return json_response({"payoutId": payout.public_id, "items": [event_view(e) for e in events]})


async def list_payouts(request: web.Request, scope: Scope) -> web.Response:
    return await _page(request, _filter(request, pointer_id=scope.pointer.id, account_id=None))


async def list_account_payouts(request: web.Request) -> web.Response:
    _bridge(request)
    ctx = context(request)
    account = await ctx.auth.account(request)
    pointer_id = None
    if (token := request.query.get("pointer")) is not None:
        pointer_id = (await owned_pointer(ctx.db, account.id, token)).id
    return await _page(request, _filter(request, pointer_id=pointer_id, account_id=account.id))


async def payout_limits(request: web.Request, scope: Scope) -> web.Response:
    bridge = _bridge(request)
    limits = await bridge.limits(scope.pointer, request.query.get("currency"))
    if Rail.LIGHTNING in bridge.rails:
        url = context(request).config.url(f"{_payee_path(request, scope)}/lnurlw")
        limits["lnurl"] = encode_lnurl(url)
        limits["lnurlw"] = lnurlw_uri(url)
    return json_response(limits)


async def lnurl_withdraw_request(request: web.Request) -> web.Response:
    """LUD-03 step 1: the withdrawRequest, with a fresh single-use k1."""
    try:
        bridge = _bridge(request)
        scope = await _payee_scope(request)
        callback = context(request).config.url(f"{_payee_path(request, scope)}/lnurlw/callback")
        return json_response(await bridge.lnurl_request(scope.pointer, callback=callback))
    except (InputError, PointerNotFound, LnurlError) as exc:
        return _lnurl_error(exc)


async def lnurl_withdraw_callback(request: web.Request) -> web.Response:
    """LUD-03 step 2: `?k1=…&pr=<invoice>`; `OK` once the payout is queued, then it is paid."""
    try:
        bridge = _bridge(request)
        scope = await _payee_scope(request)
        await bridge.lnurl_callback(scope.pointer, k1=request.query.get("k1"), pr=request.query.get("pr"))
    except (InputError, PointerNotFound, LnurlError) as exc:
        return _lnurl_error(exc)
    return json_response({"status": "OK"})


def _lnurl_error(exc: Exception) -> web.Response:
    if isinstance(exc, LnurlError):
        reason = exc.reason
    elif isinstance(exc, InputError):
        reason = exc.detail
    else:
        reason = "unknown pointer"
    return json_response({"status": "ERROR", "reason": reason}, status=400)


def _payee_path(request: web.Request, scope: Scope) -> str:
    token = request.match_info["token"]
    return token if scope.actor == "payee" else scope.pointer.token


# -- listing ---------------------------------------------------------------------------------------


def _filter(request: web.Request, *, pointer_id: int | None, account_id: int | None) -> PayoutFilter:
    query = request.query
    statuses: tuple[str, ...] = ()
    if (text := query.get("status")) is not None:
        wanted = tuple(part.strip().upper() for part in text.split(",") if part.strip())
        known = {s.value for s in PayoutStatus}
        if not wanted or any(s not in known for s in wanted):
            raise InputError(
                "invalid-status",
                f"status is a comma-separated list of {', '.join(sorted(known))}.",
                status=400,
            )
        statuses = wanted
    rail = None
    if (method := query.get("method")) is not None:
        found = RAILS.get(method.upper())
        if found is None:
            raise InputError("invalid-method", "method is BTC-CHAIN or BTC-LN.", status=400)
        rail = found.value
    return PayoutFilter(
        account_id=account_id,
        pointer_id=pointer_id,
        statuses=statuses,
        rail=rail,
        time_from=_time(query.get("timeFrom"), "timeFrom"),
        time_to=_time(query.get("timeTo"), "timeTo"),
        address=_address(request, query.get("address")),
        txid=_hex(query.get("txid", query.get("btcTxId")), "txid"),
        payment_hash=_hex(query.get("paymentHash"), "paymentHash"),
    )


def _time(text: str | None, name: str) -> datetime | None:
    return None if text is None else parse_timestamp(text, name)


def _hex(text: str | None, name: str) -> str | None:
    if text is None:
        return None
    if not _HEX64.fullmatch(text.lower()):
        raise InputError(f"invalid-{name.lower()}", f"{name} is 64 hexadecimal digits.", status=400)
    return text.lower()


def _address(request: web.Request, text: str | None) -> str | None:
    """Bech32 addresses are stored in lower case; base58 ones as given."""
    if text is None:
        return None
    lowered = text.strip().lower()
    if lowered.startswith(("bc1", "tb1", "bcrt1")):
        return lowered
    return text.strip()


async def _page(request: web.Request, where: PayoutFilter) -> web.Response:
    limit = _int(request, "limit", DEFAULT_PAGE, 1, MAX_PAGE)
    offset = _int(request, "offset", 0, 0, 10**9)
    items, total = await store.list_payouts(context(request).db, where, offset=offset, limit=limit)
    return json_response(
        {
            "items": [payout_view(item) for item in items],
            "paginationInfo": {"itemsCount": total, "limit": limit, "offset": offset},
        }
    )


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise InputError(f"invalid-{name}", f"{name} must be an integer from {low} to {high}.", status=400)
    return int(text)
