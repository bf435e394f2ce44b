"""Who may see and do what under `/app/`: every page needs a session (else it leads to sign-in), every
POST a session and the form's CSRF field (else it is refused and changes nothing). Handlers are written
against a `SignedIn` and get these checks by being wrapped in `page` or `action`; pages render through
`render_app`, which adds the navigation (with the count of new payout requests)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from spsp_pull.api.context import context
from spsp_pull.domain.states import PayoutStatus
from spsp_pull.store import payouts
from spsp_pull.web import csrf
from spsp_pull.web.app_session import SignedIn, signed_in
from spsp_pull.web.templating import render

APP_ROOT = "/app/"
SIGN_IN = "/app/sign-in"

Form = MultiDictProxy[str | bytes | bytearray | web.FileField]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PageHandler = Callable[[web.Request, SignedIn], Awaitable[web.StreamResponse]]
ActionHandler = Callable[[web.Request, SignedIn, Form], Awaitable[web.StreamResponse]]

NAVIGATION = (
    ("/app/", "Pointers"),
    ("/app/pointers/new", "New pointer"),
    ("/app/payouts", "Payouts"),
    ("/app/webhook", "Webhook secret"),
    ("/app/keys", "API keys"),
)


def page(handler: PageHandler) -> Handler:
    """A page of the signed-in account; without a session it leads to sign-in (and back here after)."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        session = await signed_in(request)
        if session is None:
            raise web.HTTPSeeOther(f"{SIGN_IN}?{urlencode({'next': request.rel_url.path_qs})}")
        return await handler(request, session)

    return guarded


def action(handler: ActionHandler) -> Handler:
    """A form's POST: a session and the CSRF field, or nothing happens."""

    async def guarded(request: web.Request) -> web.StreamResponse:
        session = await signed_in(request)
        if session is None:
            raise web.HTTPSeeOther(SIGN_IN)
        form = await request.post()
        if not csrf.csrf_valid(request, form):
            return refused(request)
        return await handler(request, session, form)

    return guarded


def refused(request: web.Request) -> web.Response:
    """A POST without a valid CSRF field: nothing done."""
    return render(request, "app/refused.html", {"title": "Form refused"}, status=403)


def done(path: str, notice: str) -> web.HTTPSeeOther:
    """POST-redirect-GET: back to `path`, which shows the fixed message `notice` names (see NOTICES)."""
    return web.HTTPSeeOther(f"{path}?{urlencode({'done': notice})}")


NOTICES = {
    "signed-in": "You are signed in.",
    "created": "The pointer was created.",
    "extended": "The number of cycles was saved.",
    "paused": "The pointer is paused.",
    "resumed": "The pointer is active again.",
    "cancelled": "The pointer was cancelled.",
    "approved": "The selected payouts were approved.",
    "payouts-cancelled": "The selected payouts were cancelled.",
    "rotated": "The webhook secret was rotated.",
    "revoked": "The API key was revoked.",
}


async def render_app(
    request: web.Request,
    session: SignedIn,
    template: str,
    page_context: Mapping[str, object],
    *,
    status: int = 200,
) -> web.Response:
    """An `/app/` page: the account, the navigation with the count of new payout requests, and the notice
    a redirect asked for."""
    notice = NOTICES.get(request.query.get("done", ""))
    messages = [("success", notice)] if notice else []
    new_requests = await new_payout_requests(request, session)
    return render(
        request,
        template,
        {
            "account": session.account,
            "nav": NAVIGATION,
            "current_path": request.path,
            "new_payout_requests": new_requests,
            "messages": messages,
            **page_context,
        },
        status=status,
    )


async def new_payout_requests(request: web.Request, session: SignedIn) -> int | None:
    """How many of the account's payouts await approval; None when this server makes no payouts."""
    ctx = context(request)
    if ctx.bridge is None:
        return None
    where = payouts.PayoutFilter(account_id=session.account.id, statuses=(PayoutStatus.NEW.value,))
    _, total = await payouts.list_payouts(ctx.db, where, offset=0, limit=1)
    return total
