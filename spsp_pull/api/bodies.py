"""Reading request bodies: JSON objects only, decoded with limits that hostile input cannot get past.

Every route that takes a JSON body reads it with `json_object`. The size bound is the application's
`client_max_size` (`MAX_BODY_BYTES`); the decoder refuses, each with its own stable code, what Python's
`json` would accept or fail on badly: nesting deeper than `MAX_JSON_DEPTH` (`json` itself would
raise RecursionError), numbers longer than `MAX_NUMBER_DIGITS` digits (`int()` refuses more than 4,300
and a Decimal exponent can ask for a billion zeros), NaN and Infinity (not JSON), lone surrogates (text
no UTF-8 encoder or database takes) and duplicate object keys (which one would count is ambiguous).
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, NoReturn

from aiohttp import web

from spsp_pull.domain.errors import InputError

MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 64
MAX_NUMBER_DIGITS = 40
_JSON_TYPES = ("application/json", "application/merge-patch+json", "text/plain", "application/octet-stream")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_DIGITS = re.compile(r"[0-9]")


async def json_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if allow_empty:
            return {}
        raise InputError("body-required", "This request needs a JSON object body.", status=400)
    if request.content_type not in _JSON_TYPES and not request.content_type.endswith("+json"):
        raise InputError("unsupported-media-type", "Send the body as application/json.", status=415)
    value = decode_json(raw)
    if not isinstance(value, dict):
        raise InputError("json-object-required", "The body must be a JSON object.", status=400)
    return value


def decode_json(raw: bytes) -> object:
    """A JSON document (UTF-8) as Python values, fractional numbers as exact Decimals; raises
    InputError (400) for anything outside the limits above."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        _refuse("malformed-json", "The body is not UTF-8 text.")
    try:
        value = json.loads(
            text,
            parse_int=_integer,
            parse_float=_decimal,
            parse_constant=_constant,
            object_pairs_hook=_object,
        )
    except RecursionError:
        _too_deep()
    except json.JSONDecodeError as exc:
        _refuse("malformed-json", f"The body is not valid JSON: {exc}")
    _check_depth_and_text(value)
    return value


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        _number_too_large()
    return int(text)


def _decimal(text: str) -> Decimal:
    if len(_DIGITS.findall(text)) > MAX_NUMBER_DIGITS:
        _number_too_large()
    value = Decimal(text)
    if abs(value.adjusted()) > MAX_NUMBER_DIGITS:
        _number_too_large()
    return value


def _constant(name: str) -> NoReturn:
    _refuse("malformed-json", f"{name} is not a JSON value.")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for key, item in pairs:
        if key in value:
            _refuse("duplicate-key", f"The key {key[:64]!r} appears more than once in one object.")
        value[key] = item
    return value


def _check_depth_and_text(document: object) -> None:
    """Walks the decoded document once (no recursion): its depth, and text without lone surrogates."""
    pending: list[tuple[object, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if _LONE_SURROGATE.search(value):
                _refuse("malformed-json", "The body has a lone surrogate (\\ud800 to \\udfff) in a string.")
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                _too_deep()
            children = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)


def _too_deep() -> NoReturn:
    _refuse("json-too-deep", f"The body nests arrays and objects more than {MAX_JSON_DEPTH} deep.")


def _number_too_large() -> NoReturn:
    _refuse(
        "json-number-too-large",
        f"The body has a number with more than {MAX_NUMBER_DIGITS} digits or a larger exponent.",
    )


def _refuse(code: str, detail: str) -> NoReturn:
    raise InputError(code, detail, status=400)
