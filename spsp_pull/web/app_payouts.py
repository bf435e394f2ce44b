"""The outstanding payouts of all the account's pointers, to approve or cancel several at once (the
sender's side of a pull payment: the payee asks, the payer approves). Approving and cancelling go
through the bridge as the payout API's `…/approve` and `…/cancel` do, one payout at a time."""

from __future__ import annotations

from aiohttp import web

from spsp_pull.api.context import context
from spsp_pull.bridge.service import Bridge
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.states import PayoutStatus
from spsp_pull.store import payouts, pointers
from spsp_pull.store.payouts import PayoutRecord
from spsp_pull.store.records import PointerRecord
from spsp_pull.web.app_access import Form, action, done, page, render_app
from spsp_pull.web.app_session import SignedIn
from spsp_pull.web.payout_summary import payout_summary

OUTSTANDING = (PayoutStatus.NEW.value, PayoutStatus.QUEUED.value)
PAGE_SIZE = 100
MAX_SELECTED = PAGE_SIZE
NOT_READY = "Payouts cannot be changed now: the payout backends have not answered yet."


@page
async def index(request: web.Request, session: SignedIn) -> web.StreamResponse:
    return await _listing(request, session, [])


async def _listing(
    request: web.Request, session: SignedIn, errors: list[str], *, status: int = 200
) -> web.StreamResponse:
    ctx = context(request)
    items: list[PayoutRecord] = []
    total = 0
    if ctx.bridge is not None:
        where = payouts.PayoutFilter(account_id=session.account.id, statuses=OUTSTANDING)
        items, total = await payouts.list_payouts(ctx.db, where, offset=0, limit=PAGE_SIZE)
    return await render_app(
        request,
        session,
        "app/payouts.html",
        {
            "title": "Payouts",
            "enabled": ctx.bridge is not None,
            "payouts": [(item, payout_summary(item)) for item in items],
            "total": total,
            "pointers": await _pointers_of(request, items),
            "errors": errors,
        },
        status=status,
    )


async def _pointers_of(request: web.Request, items: list[PayoutRecord]) -> dict[int, PointerRecord]:
    found: dict[int, PointerRecord] = {}
    for pointer_id in {item.pointer_id for item in items}:
        record = await pointers.find_by_id(context(request).db, pointer_id)
        if record is not None:
            found[pointer_id] = record
    return found


@action
async def approve(request: web.Request, session: SignedIn, form: Form) -> web.StreamResponse:
    return await _each_selected(request, session, form, approving=True)


@action
async def cancel(request: web.Request, session: SignedIn, form: Form) -> web.StreamResponse:
    return await _each_selected(request, session, form, approving=False)


async def _each_selected(
    request: web.Request, session: SignedIn, form: Form, *, approving: bool
) -> web.StreamResponse:
    bridge = context(request).bridge
    if bridge is None or not bridge.ready:
        return await _listing(
            request,
            session,
            ["Payouts cannot be changed now: the payout backends are not ready."],
            status=503,
        )
    selected = [value for value in form.getall("payout", []) if isinstance(value, str)][:MAX_SELECTED]
    if not selected:
        return await _listing(request, session, ["Select at least one payout."], status=422)
    errors = []
    for public_id in dict.fromkeys(selected):
        error = await _apply(bridge, request, session, public_id, approving=approving)
        if error is not None:
            errors.append(f"Payout {public_id}: {error}")
    if errors:
        return await _listing(request, session, errors, status=409)
    raise done("/app/payouts", "approved" if approving else "payouts-cancelled")


async def _apply(
    bridge: Bridge, request: web.Request, session: SignedIn, public_id: str, *, approving: bool
) -> str | None:
    """Approve or cancel one of the account's payouts; why not, when it could not be."""
    found = await payouts.find_payout(context(request).db, public_id=public_id.lower()[:36])
    if found is None or found.account_id != session.account.id:
        return "no such payout of this account."
    try:
        if approving:
            await bridge.approve(found, by="owner")
        else:
            await bridge.cancel(found, by="owner")
    except InputError as error:
        return error.detail
    return None
