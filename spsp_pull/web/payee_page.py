"""The payee's page of a pull pointer, `GET /<token>` from a browser (offline JWT pointers too), and its
payout claim: a form that creates an offer, the offer to confirm, the payout's state as it moves.

The token in the URL is the capability, as for an SPSP pull and the payee's payout API: whoever holds it
sees the page and may claim. Forms carry the signed double-submit CSRF field; errors are shown on the
page, with what was typed, and change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import segno
from aiohttp import web

from spsp_pull.api.context import ApiContext, context
from spsp_pull.api.spsp import POINTER_PAGE, looks_like_jwt, register_offline
from spsp_pull.api.views import pointer_view
from spsp_pull.bridge.amounts import Rail
from spsp_pull.bridge.inputs import parse_offer_request
from spsp_pull.bridge.lnurl import encode_lnurl
from spsp_pull.bridge.service import Bridge, BridgeNotReady
from spsp_pull.domain.agreement import balance
from spsp_pull.domain.errors import InputError
from spsp_pull.store import payouts
from spsp_pull.store.payouts import PayoutFilter, PayoutRecord
from spsp_pull.store.pointers import PointerNotFound, find_by_token, pointer_pulls
from spsp_pull.store.records import PointerRecord
from spsp_pull.web.csrf import csrf_valid
from spsp_pull.web.money import format_money, parse_amount
from spsp_pull.web.payee_view import payee_summary, pull_lines
from spsp_pull.web.payout_summary import payout_summary
from spsp_pull.web.templating import render

CLAIM_FIELDS = ("destination", "amount")
STALE_FORM = "This form was out of date. Please check it and submit it again."
PAYOUTS_SHOWN = 20


@dataclass
class ClaimForm:
    """What the payee typed into the claim form, and what was wrong with it (by field)."""

    values: dict[str, str] = field(default_factory=lambda: dict.fromkeys(CLAIM_FIELDS, ""))
    errors: dict[str, str] = field(default_factory=dict)


def add_payee_pages(app: web.Application) -> None:
    app[POINTER_PAGE] = pointer_page
    app.router.add_post("/{token}/claim", claim)
    app.router.add_get("/{token}/claims/{payoutId}", claim_page)
    app.router.add_post("/{token}/claims/{payoutId}/confirm", confirm_claim)
    app.router.add_post("/{token}/claims/{payoutId}/cancel", cancel_claim)


async def pointer_page(request: web.Request) -> web.StreamResponse:
    found = await _pointer(request)
    if isinstance(found, web.Response):
        return found
    return await _show_pointer(request, found, ClaimForm())


async def claim(request: web.Request) -> web.StreamResponse:
    found = await _pointer(request)
    if isinstance(found, web.Response):
        return found
    form = await request.post()
    claim_form = ClaimForm(values={name: _text(form, name) for name in CLAIM_FIELDS})
    if not csrf_valid(request, form):
        return await _show_pointer(request, found, claim_form, error=STALE_FORM, status=403)
    bridge = context(request).bridge
    if bridge is None or not bridge.ready:
        return await _show_pointer(request, found, claim_form, error=_no_payouts(bridge), status=503)
    try:
        record = await _create_offer(request, bridge, found, claim_form.values)
    except BridgeNotReady:
        return await _show_pointer(request, found, claim_form, error=_no_payouts(bridge), status=503)
    except InputError as exc:
        field_name = "amount" if exc.field in ("amount", "priceAmount") else "destination"
        claim_form.errors[field_name if exc.field else "form"] = _in_words(
            exc, found, context(request).clock.now()
        )
        return await _show_pointer(request, found, claim_form, status=exc.status)
    raise web.HTTPSeeOther(f"/{request.match_info['token']}/claims/{record.public_id}")


async def claim_page(request: web.Request) -> web.StreamResponse:
    found = await _pointer_and_payout(request)
    if isinstance(found, web.Response):
        return found
    return _show_claim(request, *found)


async def confirm_claim(request: web.Request) -> web.StreamResponse:
    return await _act_on_claim(request, "confirm")


async def cancel_claim(request: web.Request) -> web.StreamResponse:
    return await _act_on_claim(request, "cancel")


async def _act_on_claim(request: web.Request, action: str) -> web.StreamResponse:
    found = await _pointer_and_payout(request)
    if isinstance(found, web.Response):
        return found
    pointer, payout = found
    if not csrf_valid(request, await request.post()):
        return _show_claim(request, pointer, payout, error=STALE_FORM, status=403)
    bridge = context(request).bridge
    if bridge is None or not bridge.ready:
        return _show_claim(request, pointer, payout, error=_no_payouts(bridge), status=503)
    try:
        if action == "confirm":
            await bridge.approve(payout, by="payee")
        else:
            await bridge.cancel(payout, by="payee")
    except InputError as exc:
        return _show_claim(request, pointer, payout, error=exc.detail, status=exc.status)
    raise web.HTTPSeeOther(f"/{request.match_info['token']}/claims/{payout.public_id}")


async def _create_offer(
    request: web.Request, bridge: Bridge, pointer: PointerRecord, values: dict[str, str]
) -> PayoutRecord:
    body: dict[str, object] = {"destination": values["destination"]}
    if values["amount"].strip():
        body["priceAmount"] = str(parse_amount(values["amount"], pointer.terms.asset_scale, "amount"))
    offer = parse_offer_request(body, context(request).config.outbound_targets)
    return await bridge.create(pointer, offer, created_by="payee")


# -- rendering -------------------------------------------------------------------------------------


async def _show_pointer(
    request: web.Request,
    pointer: PointerRecord,
    claim_form: ClaimForm,
    *,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    ctx = context(request)
    token = request.match_info["token"]
    now = ctx.clock.now()
    bridge = ctx.bridge
    payout_lines = []
    lightning_qr = lnurl = None
    if bridge is not None and bridge.ready:
        items, _total = await payouts.list_payouts(
            ctx.db, PayoutFilter(pointer_id=pointer.id), offset=0, limit=PAYOUTS_SHOWN
        )
        payout_lines = [payout_summary(item) for item in items]
        if Rail.LIGHTNING in bridge.rails:
            lnurl = encode_lnurl(ctx.config.url(f"{token}/lnurlw"))
            lightning_qr = _qr_svg(f"LIGHTNING:{lnurl}")
    if claim_form.errors and error is None:
        error = "The payout was not created. " + " ".join(claim_form.errors.values())
    return render(
        request,
        "payee.html",
        {
            "token": token,
            "summary": payee_summary(
                pointer_view(ctx.config, pointer, now), pointer, ctx.config.pointer(token), now
            ),
            "pulls": pull_lines(await pointer_pulls(ctx.db, pointer.id, limit=50), pointer),
            "payouts_on": bridge is not None,
            "payouts_ready": bridge is not None and bridge.ready,
            "payout_lines": payout_lines,
            "claim": claim_form,
            "lnurl": lnurl,
            "lightning_qr": lightning_qr,
            "messages": [] if error is None else [("error", error)],
        },
        status=status,
    )


def _show_claim(
    request: web.Request,
    pointer: PointerRecord,
    payout: PayoutRecord,
    *,
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    token = request.match_info["token"]
    return render(
        request,
        "payee_claim.html",
        {
            "token": token,
            "title": pointer.description or "Pull payment",
            "payout": payout_summary(payout),
            "status_url": f"/{token}/payouts/{payout.public_id}",
            "messages": [] if error is None else [("error", error)],
        },
        status=status,
    )


def _qr_svg(text: str) -> str:
    """A QR code as inline SVG (segno: paths and presentation attributes only, no script, no style)."""
    return str(segno.make(text, error="m").svg_inline(scale=4, omitsize=True, svgclass="qr-code"))


# -- lookups ---------------------------------------------------------------------------------------


async def _pointer(request: web.Request) -> PointerRecord | web.Response:
    """The pointer the URL's token names, or the page saying there is none."""
    ctx = context(request)
    token = request.match_info["token"]
    try:
        found = await _find_pointer(ctx, token)
    except InputError as exc:
        return _missing(request, exc.detail)
    return _missing(request, None) if found is None else found


async def _find_pointer(ctx: ApiContext, token: str) -> PointerRecord | None:
    if looks_like_jwt(token):
        try:
            return await register_offline(ctx, token)
        except PointerNotFound:
            return None
    return await find_by_token(ctx.db, token)


async def _pointer_and_payout(request: web.Request) -> tuple[PointerRecord, PayoutRecord] | web.Response:
    pointer = await _pointer(request)
    if isinstance(pointer, web.Response):
        return pointer
    public_id = request.match_info["payoutId"].lower()
    payout = None
    if len(public_id) <= 36:
        payout = await payouts.find_payout(context(request).db, public_id=public_id)
    if payout is None or payout.pointer_id != pointer.id:
        return _missing(request, "No payout with this id belongs to this pull payment.")
    return pointer, payout


def _missing(request: web.Request, detail: str | None) -> web.Response:
    return render(request, "payee_missing.html", {"detail": detail}, status=404)


def _text(form: Mapping[str, object], name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _in_words(exc: InputError, pointer: PointerRecord, now: datetime) -> str:
    """The refusal for the page: an overdraft says what is available in money, not in minor units."""
    if exc.code != "overdraft":
        return exc.detail
    terms = pointer.terms
    available = balance(pointer.version, pointer.usage, now, pointer.cancelled_at).available
    shown = format_money(available, terms.asset_scale, terms.asset_code)
    return f"The payout would cost more than the {shown} available now."


def _no_payouts(bridge: Bridge | None) -> str:
    if bridge is None:
        return "This server makes no payouts."
    return "The payout service is starting; please try again in a moment."
