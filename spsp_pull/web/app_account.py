"""Signing in and out of the account's pages, the account's webhook secret (show, rotate) and its API
keys (list, new, revoke), through the store functions the API's `/me/…` routes call."""

from __future__ import annotations

import re

from aiohttp import web

from spsp_pull.api.accounts import parse_key_id
from spsp_pull.api.auth import INVALID_KEY
from spsp_pull.api.context import context
from spsp_pull.domain.errors import InputError
from spsp_pull.store import accounts
from spsp_pull.web import csrf
from spsp_pull.web.app_access import APP_ROOT, Form, action, done, page, render_app
from spsp_pull.web.app_session import SignedIn, end_session, key_id_of, open_session, signed_in
from spsp_pull.web.templating import render

_SAFE_NEXT = re.compile(r"/app/[A-Za-z0-9/_.~%?=&-]*")


def _next_page(text: object) -> str:
    """Where to go after signing in: a page under /app/, never another site."""
    if isinstance(text, str) and _SAFE_NEXT.fullmatch(text) and "//" not in text:
        return text
    return APP_ROOT


async def sign_in_form(request: web.Request) -> web.StreamResponse:
    if await signed_in(request) is not None:
        raise web.HTTPSeeOther(_next_page(request.query.get("next")))
    return _sign_in_page(request, request.query.get("next", APP_ROOT), None)


async def sign_in(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    if not csrf.csrf_valid(request, form):
        return render(request, "app/refused.html", {"title": "Form refused"}, status=403)
    next_page = _next_page(form.get("next"))
    presented = form.get("api_key")
    key_id = await key_id_of(request, presented) if isinstance(presented, str) else None
    if key_id is None:
        return _sign_in_page(request, next_page, INVALID_KEY, status=401)
    response = web.HTTPSeeOther(next_page)
    await open_session(request, response, key_id)
    raise response


def _sign_in_page(
    request: web.Request, next_page: str, error: str | None, *, status: int = 200
) -> web.Response:
    return render(
        request,
        "app/sign_in.html",
        {"title": "Sign in", "next_page": _next_page(next_page), "error": error},
        status=status,
    )


@action
async def sign_out(request: web.Request, session: SignedIn, form: Form) -> web.StreamResponse:
    response = web.HTTPSeeOther("/app/sign-in")
    end_session(response)
    raise response


@page
async def webhook_secret(request: web.Request, session: SignedIn) -> web.StreamResponse:
    ctx = context(request)
    secret = await accounts.webhook_secret(ctx.db, session.account.id, ctx.clock.now())
    return await render_app(
        request, session, "app/webhook_secret.html", {"title": "Webhook secret", "secret": secret}
    )


@action
async def rotate_webhook_secret(request: web.Request, session: SignedIn, form: Form) -> web.StreamResponse:
    ctx = context(request)
    await accounts.rotate_webhook_secret(ctx.db, session.account.id, ctx.clock.now())
    raise done("/app/webhook", "rotated")


@page
async def keys(request: web.Request, session: SignedIn) -> web.StreamResponse:
    return await _keys_page(request, session)


async def _keys_page(
    request: web.Request,
    session: SignedIn,
    *,
    issued: accounts.IssuedKey | None = None,
    error: InputError | None = None,
    status: int = 200,
) -> web.StreamResponse:
    listed = await accounts.list_keys(context(request).db, session.account.id)
    return await render_app(
        request,
        session,
        "app/keys.html",
        {
            "title": "API keys",
            "keys": listed,
            "issued": issued,
            "error": error,
            "current_key_id": session.key_id,
        },
        status=status,
    )


@action
async def new_key(request: web.Request, session: SignedIn, form: Form) -> web.StreamResponse:
    """The new key is shown in the answer to this POST, once (it is never stored, so no later page could
    show it): the one answer here that is not a redirect."""
    ctx = context(request)
    label = form.get("label")
    text = label.strip() if isinstance(label, str) and label.strip() else None
    try:
        issued = await accounts.issue_key(ctx.db, session.account, ctx.clock.now(), text)
    except InputError as error:
        return await _keys_page(request, session, error=error, status=error.status)
    return await _keys_page(request, session, issued=issued)


@action
async def revoke_key(request: web.Request, session: SignedIn, form: Form) -> web.StreamResponse:
    ctx = context(request)
    try:
        key_id = parse_key_id(request.match_info["id"])
        await accounts.revoke_key(ctx.db, session.account.id, key_id, ctx.clock.now())
    except InputError as error:
        return await _keys_page(request, session, error=error, status=error.status)
    raise done("/app/keys", "revoked")
