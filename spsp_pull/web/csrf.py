"""CSRF protection for forms, also on pages without a session (the payee's page: its token is the
capability): a signed double submit. The browser holds a random nonce in a cookie; each form carries
HMAC(key, nonce) in a hidden field; a POST is accepted only when the two agree. Another site can neither
read the cookie nor compute the field, and cannot plant a cookie that matches a field it does not know.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from aiohttp import web

COOKIE = "spsp_csrf"
FIELD = "csrf"
KEY = web.AppKey("csrf_key", bytes)
_ISSUED = web.RequestKey("csrf_issued_nonce", str)  # a nonce this response must set as the cookie


def _nonce(request: web.Request) -> str:
    issued: str | None = request.get(_ISSUED)
    if issued is not None:
        return issued
    cookie = request.cookies.get(COOKIE, "")
    if len(cookie) == 43:  # token_urlsafe(32)
        return cookie
    nonce = secrets.token_urlsafe(32)
    request[_ISSUED] = nonce
    return nonce


def _sign(request: web.Request, nonce: str) -> str:
    return hmac.new(request.app[KEY], nonce.encode(), hashlib.sha256).hexdigest()


def csrf_token(request: web.Request) -> str:
    """The value of the hidden `csrf` field for forms on this response (sets the cookie if needed)."""
    return _sign(request, _nonce(request))


def set_cookie_if_issued(request: web.Request, response: web.StreamResponse) -> None:
    """Call on the response of a request that rendered `csrf_token` (`render` does)."""
    nonce: str | None = request.get(_ISSUED)
    if nonce is not None:
        response.set_cookie(
            COOKIE, nonce, path="/", httponly=True, samesite="Lax", secure=request.secure or None
        )


def csrf_valid(request: web.Request, form: Mapping[str, object]) -> bool:
    """Whether a submitted form carries the field that matches the request's cookie."""
    cookie = request.cookies.get(COOKIE)
    field = form.get(FIELD)
    if not cookie or not isinstance(field, str):
        return False
    return hmac.compare_digest(field, _sign(request, cookie))
