"""Time: an injectable clock, UTC normalisation and the ISO 8601 text form used on the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol

from spsp_pull.domain.errors import InputError


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real clock, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to (tests, simulations)."""

    def __init__(self, start: datetime) -> None:
        self._now = utc(start)

    def now(self) -> datetime:
        return self._now

    def set(self, dt: datetime) -> None:
        self._now = utc(dt)

    def advance(self, delta: timedelta) -> None:
        self._now += delta


def utc(dt: datetime) -> datetime:
    """The same instant in UTC; a naive datetime is a programming error (its instant is unknown)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime {dt!r}: datetimes must be timezone-aware")
    return dt.astimezone(UTC)


def isoformat_z(dt: datetime) -> str:
    """ISO 8601 in UTC with millisecond precision and `Z`, like JavaScript's `toISOString()`.

    Sub-millisecond digits are truncated, never rounded up, so the text never names a later instant.
    """
    t = utc(dt)
    return (
        f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
        f".{t.microsecond // 1000:03d}Z"
    )


def parse_timestamp(text: object, field: str) -> datetime:
    """An ISO 8601 timestamp with an explicit offset (or `Z`) as an aware UTC datetime."""
    if not isinstance(text, str):
        raise InputError("invalid-timestamp", f"{field} must be an ISO 8601 timestamp string", field=field)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            "invalid-timestamp", f"{field} is not an ISO 8601 timestamp: {text[:64]!r}", field=field
        ) from None
    if parsed.tzinfo is None:
        raise InputError(
            "invalid-timestamp",
            f"{field} must carry a UTC offset or 'Z' (e.g. 2024-01-31T00:00:00.000Z)",
            field=field,
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InputError(
            "invalid-timestamp", f"{field} is outside the representable years", field=field
        ) from None
