"""Sessions of the account's pages (`/app/`): a signed cookie that names the API key it was opened with.

The cookie holds no secret: the key's id and the session's expiry, signed (HMAC, itsdangerous) with a key
kept in the database, so every server process sharing it accepts the cookie. It is HttpOnly,
SameSite=Strict, Secure when the request came over TLS, and expires after `SESSION_LIFETIME`. Every
request looks the key up again, so revoking it ends the session at the next request. Forms are protected
by `spsp_pull.web.csrf` (its field on every form, checked on every POST).

Signing out deletes the cookie; a copy of it taken before stays valid until it expires or its key is
revoked (nothing is kept on the server to revoke it by).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeGuard

from aiohttp import web
from itsdangerous import BadSignature, URLSafeSerializer

from spsp_pull.api.context import context
from spsp_pull.store.accounts import AccountRecord, live_key, live_key_by_id
from spsp_pull.store.settings import shared_setting

COOKIE_NAME = "spsp_app_session"
COOKIE_PATH = "/app"
SESSION_LIFETIME = timedelta(hours=8)
SIGNING_KEY_SETTING = "app-session-signing-key"
_SALT = "spsp-pull app session"


@dataclass(frozen=True, slots=True)
class SignedIn:
    account: AccountRecord
    key_id: int
    expires_at: datetime


async def _signer(request: web.Request) -> URLSafeSerializer:
    key = await shared_setting(context(request).db, SIGNING_KEY_SETTING, lambda: secrets.token_urlsafe(32))
    return URLSafeSerializer(key, salt=_SALT)


async def signed_in(request: web.Request) -> SignedIn | None:
    """The request's session while its cookie is ours, unaltered and unexpired, and its key is live."""
    cookie = request.cookies.get(COOKIE_NAME)
    if not cookie:
        return None
    try:
        payload = (await _signer(request)).loads(cookie)
    except BadSignature:
        return None
    if not isinstance(payload, dict):
        return None
    key_id, expires = payload.get("k"), payload.get("e")
    if not _is_int(key_id) or not _is_int(expires):
        return None
    expires_at = datetime.fromtimestamp(expires, UTC)
    if expires_at <= context(request).clock.now():
        return None
    found = await live_key_by_id(context(request).db, key_id)
    return None if found is None else SignedIn(found.account, key_id, expires_at)


async def key_id_of(request: web.Request, presented: str) -> int | None:
    """The id of the live API key typed into the sign-in form (checked as a Bearer key is)."""
    key = presented.strip()
    if not key:
        return None
    found = await live_key(context(request).db, key)
    return None if found is None else found.key_id


async def open_session(request: web.Request, response: web.StreamResponse, key_id: int) -> None:
    """Set the cookie of a new session signed in with `key_id` on `response`."""
    expires_at = context(request).clock.now() + SESSION_LIFETIME
    payload = {"k": key_id, "e": int(expires_at.timestamp())}
    response.set_cookie(
        COOKIE_NAME,
        (await _signer(request)).dumps(payload),
        max_age=int(SESSION_LIFETIME.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=request.secure or None,
    )


def end_session(response: web.StreamResponse) -> None:
    response.del_cookie(COOKIE_NAME, path=COOKIE_PATH)


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)
