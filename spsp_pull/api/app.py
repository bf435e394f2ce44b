"""The aiohttp application: routes, middleware and the typed context."""

from __future__ import annotations

import json

from aiohttp import web

from spsp_pull.api import accounts, pointers, spsp
from spsp_pull.api.bodies import MAX_BODY_BYTES
from spsp_pull.api.context import CONTEXT, ApiContext, context
from spsp_pull.api.openapi import docs_page, openapi_document
from spsp_pull.api.payouts import add_payout_routes
from spsp_pull.api.problems import problem_middleware
from spsp_pull.api.request_id import request_id_middleware
from spsp_pull.api.spsp import SPSP_CONTENT_TYPE
from spsp_pull.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from spsp_pull.web import setup_web
from spsp_pull.web.app_routes import add_app_routes
from spsp_pull.web.headers import security_headers_middleware
from spsp_pull.web.payee_page import add_payee_pages

POINTER_SEGMENT = "{token}"


def build_app(ctx: ApiContext) -> web.Application:
    app = web.Application(
        middlewares=[security_headers_middleware, request_id_middleware, problem_middleware],
        client_max_size=MAX_BODY_BYTES,
    )
    app[CONTEXT] = ctx
    setup_web(app)  # before add_routes: its fixed paths (/static/) come before the catch-all `/{token}`
    add_app_routes(app.router)  # the account's pages under /app/, likewise
    add_payee_pages(app)  # the payee's page of `GET /<token>` and its payout claim
    add_routes(app.router)
    return app


def add_routes(router: web.UrlDispatcher) -> None:
    """Fixed paths first: the catch-all pointer route `/{token}` comes last."""
    router.add_get("/healthz", healthz)
    router.add_get("/metrics", metrics)
    router.add_get("/openapi.json", openapi)
    router.add_get("/docs", docs)
    router.add_get("/.well-known/pay", spsp.push_endpoint)
    router.add_route("OPTIONS", "/.well-known/pay", spsp.preflight)
    router.add_get("/", root)
    router.add_post("/", pointers.create)
    router.add_get("/pointers", pointers.index)
    router.add_get(f"/pointers/{POINTER_SEGMENT}", pointers.show)
    router.add_patch(f"/pointers/{POINTER_SEGMENT}", pointers.update)
    router.add_delete(f"/pointers/{POINTER_SEGMENT}", pointers.cancel)
    router.add_post(f"/update/{POINTER_SEGMENT}", pointers.update)
    router.add_get("/accounts", accounts.list_accounts)
    router.add_post("/accounts", accounts.create_account)
    router.add_get("/accounts/{name}/keys", accounts.list_account_keys)
    router.add_post("/accounts/{name}/keys", accounts.issue_key)
    router.add_delete("/accounts/{name}/keys/{id}", accounts.revoke_account_key)
    router.add_get("/me", accounts.whoami)
    router.add_get("/me/keys", accounts.list_my_keys)
    router.add_delete("/me/keys/{id}", accounts.revoke_my_key)
    router.add_get("/me/webhook-secret", accounts.my_webhook_secret)
    router.add_post("/me/webhook-secret/rotate", accounts.rotate_my_webhook_secret)
    router.add_get("/accounts/{name}/webhook-secret", accounts.account_webhook_secret)
    router.add_post("/accounts/{name}/webhook-secret/rotate", accounts.rotate_account_webhook_secret)
    router.add_get("/jwt-keys", accounts.list_jwt_keys)
    router.add_post("/jwt-keys", accounts.add_jwt_key)
    router.add_delete("/jwt-keys/{kid}", accounts.delete_jwt_key)
    router.add_post("/jwt-revocations", accounts.revoke_jwt)
    add_payout_routes(router)
    router.add_get(f"/{POINTER_SEGMENT}", spsp.query)
    router.add_post(f"/{POINTER_SEGMENT}", spsp.register)
    router.add_route("OPTIONS", f"/{POINTER_SEGMENT}", spsp.preflight)


async def root(request: web.Request) -> web.Response:
    """`GET /` with an SPSP Accept header is the push-payment endpoint; otherwise it says what this is."""
    if "application/spsp" in request.headers.get("Accept", ""):
        return await spsp.push_endpoint(request)
    return web.json_response({"name": "spsp-pull", "docs": "/docs", "openapi": "/openapi.json"})


async def healthz(request: web.Request) -> web.Response:
    ctx = context(request)
    ready = ctx.ilp.ready and ctx.ilp.address is not None
    body = {"status": "ok" if ready else "starting", "ilpAddress": ctx.ilp.address}
    return web.Response(status=200 if ready else 503, text=json.dumps(body), content_type="application/json")


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=context(request).metrics.render().encode(), headers={"Content-Type": METRICS_CONTENT_TYPE}
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=docs_page(openapi_document()), content_type="text/html")


__all__ = ["SPSP_CONTENT_TYPE", "add_routes", "build_app"]
