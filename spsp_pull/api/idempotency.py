"""`Idempotency-Key` for POST and PATCH: the same key with the same body replays the first response; the
same key with another body is a 409."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from functools import wraps

from aiohttp import web

from spsp_pull.api.context import context
from spsp_pull.api.problems import Problem
from spsp_pull.store import idempotency

AccountHandler = Callable[[web.Request, int], Awaitable[web.Response]]
MAX_KEY_LENGTH = 255


def idempotent(handler: AccountHandler) -> AccountHandler:
    """Wrap a handler that acts for an account (its id is the second argument)."""

    @wraps(handler)
    async def wrapper(request: web.Request, account_id: int) -> web.Response:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return await handler(request, account_id)
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise Problem(
                400, "invalid-idempotency-key", f"Idempotency-Key has 1 to {MAX_KEY_LENGTH} characters."
            )
        ctx = context(request)
        digest = hashlib.sha256()
        digest.update(f"{request.method} {request.rel_url.path}\n".encode())
        digest.update(await request.read())
        fingerprint = digest.hexdigest()
        earlier = await idempotency.claim(ctx.db, account_id, key, fingerprint, ctx.clock.now())
        if earlier is not None:
            if earlier.fingerprint != fingerprint:
                raise Problem(
                    409, "idempotency-key-reused", "This Idempotency-Key was used with another request body."
                )
            if earlier.status == idempotency.IN_PROGRESS:
                raise Problem(
                    409, "idempotency-key-in-use", "A request with this Idempotency-Key is running."
                )
            response = web.Response(status=earlier.status, text=earlier.body)
            response.headers["Content-Type"] = earlier.content_type
            response.headers["Idempotent-Replayed"] = "true"
            return response
        try:
            response = await handler(request, account_id)
        except BaseException:
            # Refused or failed requests are not remembered: the client may correct them and retry.
            await idempotency.abandon(ctx.db, account_id, key)
            raise
        await idempotency.complete(
            ctx.db,
            account_id,
            key,
            response.status,
            response.text or "",
            response.headers.get("Content-Type", "application/json"),
        )
        return response

    return wrapper
