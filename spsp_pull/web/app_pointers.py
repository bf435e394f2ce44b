"""The account's pointers as pages: the list (filtered by state), the creation form, a pointer's page
(versions, pulls, payouts, webhook deliveries) and its actions: extend, pause, resume, cancel.

Every change goes through the functions the JSON API calls (`api.pointers.create_for`, `update_for`,
`cancel_for`), so a form is validated exactly as the API body it stands for, and a
refusal shows the API's message for the same code."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from aiohttp import web

from spsp_pull.api.bodies import decode_json
from spsp_pull.api.context import context
from spsp_pull.api.pointers import cancel_for, create_for, update_for
from spsp_pull.domain.agreement import State, balance, global_cycle_window, state
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.states import PayoutStatus
from spsp_pull.store import outbox, payouts, pointers
from spsp_pull.store.outbox import DeliveryRecord
from spsp_pull.store.pointers import PointerNotFound
from spsp_pull.store.records import PointerRecord
from spsp_pull.web.app_access import Form, action, done, page, render_app
from spsp_pull.web.app_session import SignedIn
from spsp_pull.web.payout_summary import payout_summary

STATES: tuple[State, ...] = ("pending", "active", "paused", "ended", "expired", "cancelled")
PAGE_SIZE = 50
SCAN_BATCH = 200
MAX_SCAN_BATCHES = 10
INTERVALS = (("P1D", "Every day"), ("P1W", "Every week"), ("P1M", "Every month"), ("P1Y", "Every year"))
RECENT_DELIVERIES = 20
# The creation form's fields, named as in the API's body.
CREATE_FIELDS = (
    "description",
    "amount",
    "assetCode",
    "assetScale",
    "interval",
    "cycles",
    "cap",
    "start",
    "expiry",
    "webhook",
    "metadata",
)


@dataclass(frozen=True, slots=True)
class PointerSummary:
    record: PointerRecord
    state: State
    available: int
    cycle: int
    next_cycle_at: datetime | None

    @property
    def title(self) -> str:
        return self.record.description or self.record.token


def summarize(record: PointerRecord, now: datetime) -> PointerSummary:
    current = balance(record.version, record.usage, now, record.cancelled_at)
    now_state = state(record.version, now, record.cancelled_at)
    return PointerSummary(record, now_state, current.available, current.cycle, next_cycle_start(record, now))


def next_cycle_start(record: PointerRecord, now: datetime) -> datetime | None:
    """When the next cycle begins; None when no cycle follows (the last one, an expiry before it, or a
    cancelled agreement)."""
    version, terms = record.version, record.version.terms
    if record.cancelled_at is not None:
        return None
    c = balance(version, record.usage, now, record.cancelled_at).cycle
    if c == 0:
        return terms.start
    if c >= terms.cycles:
        return None
    begins = global_cycle_window(version, c)[1]
    if terms.expiry is not None and begins >= terms.expiry:
        return None
    return begins


# -- the list --------------------------------------------------------------------------------------


@page
async def index(request: web.Request, session: SignedIn) -> web.StreamResponse:
    ctx = context(request)
    wanted = request.query.get("state", "")
    if wanted not in STATES:
        wanted = ""
    cursor = request.query.get("after", "")
    after_id = int(cursor) if cursor.isdigit() and len(cursor) < 19 else None
    now = ctx.clock.now()
    shown: list[PointerSummary] = []
    # The state is a matter of time, so it is filtered here, a batch at a time; a page reads at most
    # MAX_SCAN_BATCHES of them (then "Next page" goes on from where it stopped).
    more = False
    for _ in range(MAX_SCAN_BATCHES):
        batch = await pointers.list_pointers(ctx.db, session.account.id, after_id=after_id, limit=SCAN_BATCH)
        for record in batch:
            after_id = record.id
            summary = summarize(record, now)
            if not wanted or summary.state == wanted:
                shown.append(summary)
                if len(shown) == PAGE_SIZE:
                    break
        if len(batch) < SCAN_BATCH and len(shown) < PAGE_SIZE:
            break
        if len(shown) == PAGE_SIZE:
            more = bool(await pointers.list_pointers(ctx.db, session.account.id, after_id=after_id, limit=1))
            break
    else:
        more = True
    return await render_app(
        request,
        session,
        "app/pointers.html",
        {
            "title": "Pointers",
            "pointers": shown,
            "states": STATES,
            "wanted": wanted,
            "next_after": after_id if more else None,
        },
    )


# -- creating --------------------------------------------------------------------------------------


@page
async def new(request: web.Request, session: SignedIn) -> web.StreamResponse:
    defaults = {"assetCode": "USD", "assetScale": "2", "interval": "P1M", "cycles": "12"}
    return await _creation_form(request, session, defaults, None)


@action
async def create(request: web.Request, session: SignedIn, form: Form) -> web.StreamResponse:
    values = {name: _text(form, name) for name in CREATE_FIELDS}
    values["cap"] = "true" if form.get("cap") == "true" else "false"
    try:
        record = await create_for(context(request), session.account.id, creation_body(values))
    except InputError as error:
        return await _creation_form(request, session, values, error, status=422)
    raise done(f"/app/pointers/{record.token}", "created")


def creation_body(values: Mapping[str, str]) -> dict[str, object]:
    """The API body the form stands for: empty optional fields are absent, metadata is JSON text (decoded
    with the API's own limits)."""
    body: dict[str, object] = {name: value for name, value in values.items() if value != ""}
    if "metadata" in body:
        try:
            body["metadata"] = decode_json(values["metadata"].encode())
        except InputError as error:
            raise InputError(error.code, f"metadata: {error.detail}", status=422, field="metadata") from None
    return body


async def _creation_form(
    request: web.Request,
    session: SignedIn,
    values: Mapping[str, str],
    error: InputError | None,
    *,
    status: int = 200,
) -> web.StreamResponse:
    return await render_app(
        request,
        session,
        "app/new_pointer.html",
        {"title": "New pointer", "values": values, "error": error, "intervals": INTERVALS},
        status=status,
    )


# -- one pointer -----------------------------------------------------------------------------------


@page
async def show(request: web.Request, session: SignedIn) -> web.StreamResponse:
    return await _pointer_page(request, session)


async def _pointer_page(
    request: web.Request,
    session: SignedIn,
    *,
    error: InputError | None = None,
    status: int = 200,
) -> web.StreamResponse:
    ctx = context(request)
    record = await _owned(request, session)
    if record is None:
        return await not_found(request, session)
    payout_items: list[payouts.PayoutRecord] = []
    if ctx.bridge is not None:
        where = payouts.PayoutFilter(pointer_id=record.id)
        payout_items, _ = await payouts.list_payouts(ctx.db, where, offset=0, limit=50)
    return await render_app(
        request,
        session,
        "app/pointer.html",
        {
            "title": record.description or record.token,
            "pointer": summarize(record, ctx.clock.now()),
            "payment_pointer": ctx.config.pointer(record.token),
            "metadata_text": None
            if record.metadata is None
            else json.dumps(record.metadata, ensure_ascii=False),
            "versions": await pointers.pointer_versions(ctx.db, record.id),
            "pulls": await pointers.pointer_pulls(ctx.db, record.id),
            "payouts": [(item, payout_summary(item)) for item in payout_items],
            "new_payouts": any(item.status == PayoutStatus.NEW for item in payout_items),
            "payouts_enabled": ctx.bridge is not None,
            "deliveries": await _deliveries(request, record),
            "error": error,
        },
        status=status,
    )


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    id: int
    event: str
    state: str
    attempts: list[DeliveryRecord]


async def _deliveries(request: web.Request, record: PointerRecord) -> list[WebhookMessage]:
    """The latest webhook messages about the pointer, newest first, with their delivery attempts."""
    db = context(request).db
    messages = (await outbox.messages_for_pointer(db, record.id))[-RECENT_DELIVERIES:]
    found = []
    for message_id, event, message_state in reversed(messages):
        _, attempts = await outbox.message_state(db, message_id)
        found.append(WebhookMessage(message_id, event, message_state, attempts))
    return found


@page
async def extend_form(request: web.Request, session: SignedIn) -> web.StreamResponse:
    return await _extend_page(request, session, None, None)


@action
async def extend(request: web.Request, session: SignedIn, form: Form) -> web.StreamResponse:
    cycles = _text(form, "cycles")
    token = request.match_info["token"]
    try:
        await update_for(context(request), session.account.id, token, {"cycles": cycles})
    except PointerNotFound:
        return await not_found(request, session)
    except InputError as error:
        return await _extend_page(request, session, cycles, error, status=error.status)
    raise done(f"/app/pointers/{token}", "extended")


async def _extend_page(
    request: web.Request,
    session: SignedIn,
    cycles: str | None,
    error: InputError | None,
    *,
    status: int = 200,
) -> web.StreamResponse:
    record = await _owned(request, session)
    if record is None:
        return await not_found(request, session)
    return await render_app(
        request,
        session,
        "app/extend.html",
        {
            "title": "Extend",
            "pointer": summarize(record, context(request).clock.now()),
            "cycles_value": str(record.terms.cycles) if cycles is None else cycles,
            "error": error,
        },
        status=status,
    )


@action
async def pause(request: web.Request, session: SignedIn, form: Form) -> web.StreamResponse:
    return await _change(request, session, {"paused": True}, "paused")


@action
async def resume(request: web.Request, session: SignedIn, form: Form) -> web.StreamResponse:
    return await _change(request, session, {"paused": False}, "resumed")


async def _change(
    request: web.Request, session: SignedIn, body: dict[str, object], notice: str
) -> web.StreamResponse:
    token = request.match_info["token"]
    try:
        await update_for(context(request), session.account.id, token, body)
    except PointerNotFound:
        return await not_found(request, session)
    except InputError as error:
        return await _pointer_page(request, session, error=error, status=error.status)
    raise done(f"/app/pointers/{token}", notice)


@page
async def confirm_cancel(request: web.Request, session: SignedIn) -> web.StreamResponse:
    record = await _owned(request, session)
    if record is None:
        return await not_found(request, session)
    return await render_app(
        request,
        session,
        "app/confirm_cancel.html",
        {"title": "Cancel pointer", "pointer": summarize(record, context(request).clock.now())},
    )


@action
async def cancel(request: web.Request, session: SignedIn, form: Form) -> web.StreamResponse:
    ctx = context(request)
    token = request.match_info["token"]
    try:
        await cancel_for(ctx, session.account.id, token)
    except PointerNotFound:
        return await not_found(request, session)
    raise done(f"/app/pointers/{token}", "cancelled")


async def _owned(request: web.Request, session: SignedIn) -> PointerRecord | None:
    try:
        return await pointers.owned_pointer(
            context(request).db, session.account.id, request.match_info["token"]
        )
    except PointerNotFound:
        return None


async def not_found(request: web.Request, session: SignedIn) -> web.StreamResponse:
    """Another account's pointer, or none: the same 404 either way."""
    return await render_app(request, session, "app/not_found.html", {"title": "Not found"}, status=404)


def _text(form: Form, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""
