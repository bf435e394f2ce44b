"""The routes of the account's pages, all under `/app/`. Every GET but the sign-in form is a `page` (a
session or the way to sign-in), every POST but sign-in an `action` (a session and the CSRF field)."""

from __future__ import annotations

from aiohttp import web

from spsp_pull.web import app_account, app_payouts, app_pointers

POINTER = "/app/pointers/{token}"


def add_app_routes(router: web.UrlDispatcher) -> None:
    """Fixed paths: register them before the catch-all `/{token}`."""
    router.add_get("/app", to_app_root)
    router.add_get("/app/sign-in", app_account.sign_in_form)
    router.add_post("/app/sign-in", app_account.sign_in)
    router.add_post("/app/sign-out", app_account.sign_out)
    router.add_get("/app/", app_pointers.index)
    router.add_get("/app/pointers/new", app_pointers.new)
    router.add_post("/app/pointers", app_pointers.create)
    router.add_get(POINTER, app_pointers.show)
    router.add_get(f"{POINTER}/extend", app_pointers.extend_form)
    router.add_post(f"{POINTER}/extend", app_pointers.extend)
    router.add_post(f"{POINTER}/pause", app_pointers.pause)
    router.add_post(f"{POINTER}/resume", app_pointers.resume)
    router.add_get(f"{POINTER}/cancel", app_pointers.confirm_cancel)
    router.add_post(f"{POINTER}/cancel", app_pointers.cancel)
    router.add_get("/app/payouts", app_payouts.index)
    router.add_post("/app/payouts/approve", app_payouts.approve)
    router.add_post("/app/payouts/cancel", app_payouts.cancel)
    router.add_get("/app/webhook", app_account.webhook_secret)
    router.add_post("/app/webhook/rotate", app_account.rotate_webhook_secret)
    router.add_get("/app/keys", app_account.keys)
    router.add_post("/app/keys", app_account.new_key)
    router.add_post("/app/keys/{id}/revoke", app_account.revoke_key)


async def to_app_root(request: web.Request) -> web.StreamResponse:
    raise web.HTTPMovedPermanently("/app/")
