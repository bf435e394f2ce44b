"""Accounts, API keys, webhook signing secrets, offline-pointer signing keys and JWT revocations."""

from __future__ import annotations

import re

from aiohttp import web

from spsp_pull.api.bodies import json_object
from spsp_pull.api.context import context
from spsp_pull.api.idempotency import idempotent
from spsp_pull.api.pointers import json_response
from spsp_pull.domain.clock import isoformat_z
from spsp_pull.domain.errors import InputError
from spsp_pull.store import accounts, jwt_keys
from spsp_pull.store.accounts import AccountRecord, ApiKeyRecord, IssuedKey, WebhookSecret

MAX_KEY_ID = 2**31 - 1  # the largest id an INTEGER column holds


def account_view(record: AccountRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "name": record.name,
        "admin": record.is_admin,
        "createdAt": isoformat_z(record.created_at),
    }


def issued_key_view(issued: IssuedKey) -> dict[str, object]:
    return {**account_view(issued.account), "apiKey": issued.key, "apiKeyId": issued.key_id}


def api_key_view(key: ApiKeyRecord) -> dict[str, object]:
    """Everything about a key but the key itself."""
    return {
        "id": key.id,
        "prefix": key.prefix,
        "label": key.label,
        "bootstrap": key.bootstrap,
        "createdAt": isoformat_z(key.created_at),
        "revokedAt": None if key.revoked_at is None else isoformat_z(key.revoked_at),
    }


def webhook_secret_view(secret: WebhookSecret) -> dict[str, object]:
    until = secret.previous_valid_until
    return {
        "webhookSecret": secret.secret,
        "previousSecretValidUntil": None if until is None else isoformat_z(until),
    }


async def create_account(request: web.Request) -> web.Response:
    admin = await context(request).auth.admin(request)
    return await _create_account(request, admin.id)


@idempotent
async def _create_account(request: web.Request, _admin_id: int) -> web.Response:
    ctx = context(request)
    body = await json_object(request)
    name = body.get("name")
    if not isinstance(name, str):
        raise InputError("invalid-account-name", "name must be a string.", field="name")
    issued = await accounts.create_account(ctx.db, name, ctx.clock.now())
    return json_response(issued_key_view(issued), status=201)


async def list_accounts(request: web.Request) -> web.Response:
    ctx = context(request)
    await ctx.auth.admin(request)
    return json_response({"items": [account_view(a) for a in await accounts.list_accounts(ctx.db)]})


async def issue_key(request: web.Request) -> web.Response:
    ctx = context(request)
    account = await _named_account(request)
    label = (await json_object(request, allow_empty=True)).get("label")
    if label is not None and not isinstance(label, str):
        raise InputError("invalid-label", "label must be a string.", field="label")
    issued = await accounts.issue_key(ctx.db, account, ctx.clock.now(), label)
    return json_response(issued_key_view(issued), status=201)


async def list_account_keys(request: web.Request) -> web.Response:
    account = await _named_account(request)
    return await _key_list(request, account)


async def revoke_account_key(request: web.Request) -> web.Response:
    account = await _named_account(request)
    return await _revoke(request, account)


async def whoami(request: web.Request) -> web.Response:
    return json_response(account_view(await context(request).auth.account(request)))


async def list_my_keys(request: web.Request) -> web.Response:
    return await _key_list(request, await context(request).auth.account(request))


async def revoke_my_key(request: web.Request) -> web.Response:
    return await _revoke(request, await context(request).auth.account(request))


async def my_webhook_secret(request: web.Request) -> web.Response:
    ctx = context(request)
    account = await ctx.auth.account(request)
    return json_response(
        webhook_secret_view(await accounts.webhook_secret(ctx.db, account.id, ctx.clock.now()))
    )


async def rotate_my_webhook_secret(request: web.Request) -> web.Response:
    account = await context(request).auth.account(request)
    return await _rotate_webhook_secret(request, account.id)


async def account_webhook_secret(request: web.Request) -> web.Response:
    ctx = context(request)
    account = await _named_account(request)
    return json_response(
        webhook_secret_view(await accounts.webhook_secret(ctx.db, account.id, ctx.clock.now()))
    )


async def rotate_account_webhook_secret(request: web.Request) -> web.Response:
    account = await _named_account(request)
    return await _rotate_webhook_secret(request, account.id)


@idempotent
async def _rotate_webhook_secret(request: web.Request, account_id: int) -> web.Response:
    ctx = context(request)
    await json_object(request, allow_empty=True)
    rotated = await accounts.rotate_webhook_secret(ctx.db, account_id, ctx.clock.now())
    return json_response(webhook_secret_view(rotated))


async def _named_account(request: web.Request) -> AccountRecord:
    """The account named in the path, for the admin."""
    ctx = context(request)
    await ctx.auth.admin(request)
    account = await accounts.find_account(ctx.db, request.match_info["name"])
    if account is None:
        raise InputError("account-not-found", "No account with this name.", status=404)
    return account


async def _key_list(request: web.Request, account: AccountRecord) -> web.Response:
    keys = await accounts.list_keys(context(request).db, account.id)
    return json_response({"items": [api_key_view(key) for key in keys]})


async def _revoke(request: web.Request, account: AccountRecord) -> web.Response:
    ctx = context(request)
    key_id = parse_key_id(request.match_info["id"])
    revoked = await accounts.revoke_key(ctx.db, account.id, key_id, ctx.clock.now())
    return json_response(api_key_view(revoked))


def parse_key_id(text: str) -> int:
    """A key id from a path; one that cannot be a key's is reported as not found."""
    if not re.fullmatch(r"[0-9]{1,10}", text) or int(text) > MAX_KEY_ID:
        raise accounts.key_not_found()
    return int(text)


async def add_jwt_key(request: web.Request) -> web.Response:
    ctx = context(request)
    account = await ctx.auth.account(request)
    body = await json_object(request)
    kid, algorithm, pem = body.get("kid"), body.get("alg"), body.get("publicKey")
    for name, value in (("kid", kid), ("alg", algorithm), ("publicKey", pem)):
        if not isinstance(value, str) or not value:
            raise InputError("missing-field", f"{name} is required (a string).", field=name)
    assert isinstance(kid, str) and isinstance(algorithm, str) and isinstance(pem, str)
    await jwt_keys.add_key(ctx.db, account.id, kid, algorithm, pem, ctx.clock.now())
    return json_response({"kid": kid, "alg": algorithm}, status=201)


async def list_jwt_keys(request: web.Request) -> web.Response:
    ctx = context(request)
    account = await ctx.auth.account(request)
    keys = await jwt_keys.list_keys(ctx.db, account.id)
    return json_response({"items": [{"kid": k.kid, "alg": k.algorithm} for k in keys]})


async def delete_jwt_key(request: web.Request) -> web.Response:
    ctx = context(request)
    account = await ctx.auth.account(request)
    await jwt_keys.delete_key(ctx.db, account.id, request.match_info["kid"])
    return web.Response(status=204)


async def revoke_jwt(request: web.Request) -> web.Response:
    ctx = context(request)
    account = await ctx.auth.account(request)
    body = await json_object(request)
    jti = body.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 200:
        raise InputError("invalid-jti", "jti must be the JWT id (a string).", field="jti")
    await jwt_keys.revoke_jwt(ctx.db, account.id, jti, ctx.clock.now())
    return json_response({"jti": jti, "revoked": True}, status=201)
