"""An HTTP error answer as one line of text, whatever its shape."""

from __future__ import annotations

import json
from typing import Any


def json_or_text(text: str) -> object:
    """The body as JSON when it is JSON, else the text itself (an HTML error page from a proxy, say)."""
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text


def problem_text(status: int, body: object) -> str:
    """`<status> <code>: <detail>` from problem+json (`code`, `detail`, `title`) or the SPSP error body
    (`id`, `message`); else the body's text, shortened. Never a Python repr of a dict."""
    if isinstance(body, dict):
        code = _text(body, "code") or _text(body, "id")
        detail = _text(body, "detail") or _text(body, "message") or _text(body, "title")
        head = f"{status} {code}" if code else str(status)
        return f"{head}: {detail}" if detail else head
    text = " ".join(str(body or "").split())[:200]
    return f"{status}: {text}" if text else str(status)


def _text(body: dict[Any, Any], name: str) -> str:
    value = body.get(name)
    return value if isinstance(value, str) else ""
