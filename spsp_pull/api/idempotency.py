"""`Idempotency-Key` for POST and PATCH: the same key with the same body replays the first response; the
same key with another body is a 409. A claim lapses after `SPSP_IDEMPOTENCY_CLAIM_TTL` (a request that
crashed), a response after `SPSP_IDEMPOTENCY_RETENTION` (see `spsp_pull.store.idempotency`)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from functools import wraps

from aiohttp import web

from spsp_pull.api.context import context
from spsp_pull.domain.errors import InputError
from spsp_pull.store import idempotency

AccountHandler = Callable[[web.Request, int], Awaitable[web.Response]]
MAX_KEY_LENGTH = 255

log = logging.getLogger(__name__)


def idempotent(handler: AccountHandler) -> AccountHandler:
    """Wrap a handler that acts for an account (its id is the second argument)."""

    @wraps(handler)
    async def wrapper(request: web.Request, account_id: int) -> web.Response:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return await handler(request, account_id)
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise InputError(
                "invalid-idempotency-key",
                f"Idempotency-Key has 1 to {MAX_KEY_LENGTH} characters.",
                status=400,
            )
        ctx = context(request)
        digest = hashlib.sha256()
        digest.update(f"{request.method} {request.rel_url.path}\n".encode())
        digest.update(await request.read())
        fingerprint = digest.hexdigest()
        expiry = idempotency.Expiry(ctx.config.idempotency_claim_ttl, ctx.config.idempotency_retention)
        claimed_at = ctx.clock.now()
        earlier = await idempotency.claim(ctx.db, account_id, key, fingerprint, claimed_at, expiry)
        if earlier is not None:
            if earlier.fingerprint != fingerprint:
                raise InputError(
                    "idempotency-key-reused",
                    "This Idempotency-Key was used with another request body.",
                    status=409,
                )
            if earlier.status == idempotency.IN_PROGRESS:
                raise InputError(
                    "idempotency-key-in-use",
                    "A request with this Idempotency-Key is running.",
                    status=409,
                )
            response = web.Response(status=earlier.status, text=earlier.body)
            response.headers["Content-Type"] = earlier.content_type
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            response = await handler(request, account_id)
        except BaseException:
            # Refused or failed requests are not remembered: the client may correct them and retry.
            await idempotency.abandon(ctx.db, account_id, key, claimed_at)
            raise
        stored = await idempotency.complete(
            ctx.db,
            account_id,
            key,
            claimed_at,
            response.status,
            response.text or "",
            response.headers.get("Content-Type", "application/json"),
        )
        if not stored:
            log.warning("an Idempotency-Key claim lapsed before its request finished: response not stored")
        return response

    return wrapper
