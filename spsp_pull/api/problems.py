"""`application/problem+json` (RFC 9457) responses with a stable `code`, and the middleware that maps
errors onto them: an `InputError` (the one error type a handler raises to refuse a request) with its
status and code, an aiohttp HTTP error with a code for its status, anything else a logged 500."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from aiohttp import web

from spsp_pull.domain.errors import InputError
from spsp_pull.store.pointers import PointerNotFound

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


def problem_response(
    status: int, code: str, detail: str, *, field: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    body: dict[str, object] = {
        "type": f"https://spsp-pull.dev/problems/{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "code": code,
        "detail": detail,
    }
    if field is not None:
        body["field"] = field
    return web.Response(
        status=status, text=json.dumps(body), content_type=PROBLEM_JSON, headers=headers or {}
    )


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except InputError as exc:
        return problem_response(exc.status, exc.code, exc.detail, field=exc.field)
    except PointerNotFound:
        return problem_response(
            404, "pointer-not-found", "No pointer with this token belongs to this account."
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not-found", 405: "method-not-allowed", 413: "body-too-large"}.get(
            exc.status, f"http-{exc.status}"
        )
        return problem_response(exc.status, code, exc.reason, headers=_allow_header(exc))
    except Exception:
        return unexpected_error(request.method, request.rel_url.path)


def unexpected_error(method: str, path: str) -> web.Response:
    """Log the exception being handled and answer 500."""
    log.exception("unhandled error on %s %s", method, path)
    return problem_response(500, "internal-error", "The server failed to handle this request.")


def _allow_header(exc: web.HTTPException) -> dict[str, str]:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}
