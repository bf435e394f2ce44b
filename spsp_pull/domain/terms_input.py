"""Agreement terms and changes as they arrive from outside (HTTP bodies, JWT claims), validated."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TypeVar

from spsp_pull.domain.agreement import Changes, Terms, validate_expiry
from spsp_pull.domain.clock import parse_timestamp, utc
from spsp_pull.domain.duration import parse_interval
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.money import parse_amount, parse_count

_T = TypeVar("_T")

MAX_CYCLES = 10**9
MAX_ASSET_SCALE = 255
MAX_ASSET_CODE_LENGTH = 12

_REQUIRED = ("amount", "assetCode", "assetScale", "interval", "cycles", "cap")
_OPTIONAL = ("start", "expiry")
# Fields the caller handles itself (webhook, description, metadata) and standard JWT claims that ride
# along with the terms in an offline pointer.
_LEFT_TO_CALLER = frozenset({"webhook", "description", "metadata"})
_JWT_CLAIMS = frozenset({"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "kid"})
_TERMS_FIELDS = frozenset(_REQUIRED + _OPTIONAL) | _LEFT_TO_CALLER | _JWT_CLAIMS
_CHANGEABLE = frozenset({"amount", "interval", "cycles", "cap", "expiry", "paused", "resumesAt"})
_IMMUTABLE = frozenset({"assetCode", "assetScale"})


def parse_terms(payload: Mapping[str, object], now: datetime) -> Terms:
    """Terms from the agreement fields; `start` defaults to `now`, `expiry` is optional (null = none).

    Amounts and counts may be JSON integers or integer strings, `cap` a bool or "true"/"false".
    """
    for name in payload:
        if name not in _TERMS_FIELDS:
            raise InputError("unknown-field", f"{name!r} is not an agreement field", field=name)
    for name in _REQUIRED:
        if payload.get(name) is None:
            raise InputError("missing-field", f"{name} is required", field=name)
    amount = _parse_amount(payload["amount"])
    asset_code = _parse_asset_code(payload["assetCode"])
    asset_scale = parse_count(payload["assetScale"], "assetScale", 0, MAX_ASSET_SCALE, "invalid-asset-scale")
    interval = parse_interval(payload["interval"])
    cycles = _parse_cycles(payload["cycles"])
    cap = _parse_cap(payload["cap"])
    stated_start = _optional_timestamp(payload, "start")
    expiry = _optional_timestamp(payload, "expiry")
    if expiry is not None:
        validate_expiry(expiry, stated_start, now)
    return Terms(
        amount=amount,
        asset_code=asset_code,
        asset_scale=asset_scale,
        interval=interval,
        cycles=cycles,
        cap=cap,
        start=utc(now) if stated_start is None else stated_start,
        expiry=expiry,
    )


def parse_changes(payload: Mapping[str, object]) -> Changes | None:
    """A payer's update: any of `amount`, `interval`, `cycles`, `cap`, `expiry` (null removes the expiry),
    `paused` (true pauses, false resumes) with `resumesAt` (only with `"paused": true`; null or absent:
    until resumed), and the fields the caller handles (webhook, description, metadata). None when no term
    changes.

    Changing the asset is refused ('asset-immutable': create a new pointer instead); whether the new
    expiry is usable is checked by `agreement.revise`, which knows the start and the time.
    """
    for name in payload:
        if name in _IMMUTABLE:
            raise InputError(
                "asset-immutable", f"{name} cannot be changed; create a new pointer instead", field=name
            )
        if name not in _CHANGEABLE and name not in _LEFT_TO_CALLER:
            raise InputError("unknown-field", f"{name!r} cannot be changed", field=name)
    if not payload:
        raise InputError(
            "no-changes",
            f"an update needs at least one of {', '.join(sorted(_CHANGEABLE | _LEFT_TO_CALLER))}",
        )
    if _CHANGEABLE.isdisjoint(payload):
        return None
    paused = _parse_given(payload, "paused", _parse_paused)
    resumes_at = _optional_timestamp(payload, "resumesAt")
    if "resumesAt" in payload and paused is not True:
        raise InputError("resumes-at-without-pause", 'resumesAt goes with "paused": true', field="resumesAt")
    return Changes(
        amount=_parse_given(payload, "amount", _parse_amount),
        interval=_parse_given(payload, "interval", parse_interval),
        cycles=_parse_given(payload, "cycles", _parse_cycles),
        cap=_parse_given(payload, "cap", _parse_cap),
        expiry=_optional_timestamp(payload, "expiry"),
        clear_expiry="expiry" in payload and payload["expiry"] is None,
        paused=paused,
        resumes_at=resumes_at,
    )


def _parse_given(payload: Mapping[str, object], name: str, parse: Callable[[object], _T]) -> _T | None:
    """The parsed field if it is in the payload (a null is parsed, and so refused, like any bad value)."""
    return parse(payload[name]) if name in payload else None


def _optional_timestamp(payload: Mapping[str, object], name: str) -> datetime | None:
    """The timestamp field, None when it is absent or null."""
    value = payload.get(name)
    return None if value is None else parse_timestamp(value, name)


def _parse_amount(value: object) -> int:
    return parse_amount(value, "amount")


def _parse_asset_code(value: object) -> str:
    if (
        not isinstance(value, str)
        or not 1 <= len(value) <= MAX_ASSET_CODE_LENGTH
        or not all("!" <= char <= "~" for char in value)
    ):
        raise InputError(
            "invalid-asset-code",
            f"assetCode must be 1 to {MAX_ASSET_CODE_LENGTH} printable ASCII characters without spaces",
            field="assetCode",
        )
    return value


def _parse_cycles(value: object) -> int:
    return parse_count(value, "cycles", 1, MAX_CYCLES, "invalid-cycles")


def _parse_paused(value: object) -> bool:
    if isinstance(value, bool):
        return value
    raise InputError("invalid-paused", "paused must be true or false", field="paused")


def _parse_cap(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise InputError("invalid-cap", 'cap must be true or false (or "true" / "false")', field="cap")
