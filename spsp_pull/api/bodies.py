"""Reading request bodies: JSON objects only. The size bound is the application's `client_max_size`."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from aiohttp import web

from spsp_pull.api.problems import Problem

MAX_BODY_BYTES = 64 * 1024
_JSON_TYPES = ("application/json", "application/merge-patch+json", "text/plain", "application/octet-stream")


async def json_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise Problem(400, "body-required", "This request needs a JSON object body.")
    if request.content_type not in _JSON_TYPES and not request.content_type.endswith("+json"):
        raise Problem(415, "unsupported-media-type", "Send the body as application/json.")
    try:
        # Fractional numbers become exact Decimals, never floats; the field parsers then refuse them.
        value = json.loads(raw, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(400, "malformed-json", f"The body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise Problem(400, "json-object-required", "The body must be a JSON object.")
    return value
