"""Times, intervals and counts in words for the pages."""

from __future__ import annotations

from datetime import datetime

from spsp_pull.domain.clock import utc
from spsp_pull.domain.duration import Interval

_MICROS = (
    (3_600_000_000, "hour"),
    (60_000_000, "minute"),
    (1_000_000, "second"),
)


def plural(count: int, noun: str) -> str:
    """`plural(1, "cycle")` is "1 cycle", `plural(12, "cycle")` "12 cycles"."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def every(interval: Interval) -> str:
    """ "every month", "every 2 weeks", "every 30 seconds"; an interval of mixed parts in ISO 8601."""
    months, days, micros = interval.months, interval.days, interval.micros
    if days == micros == 0:
        return _every(*((months // 12, "year") if months % 12 == 0 else (months, "month")))
    if months == micros == 0:
        return _every(*((days // 7, "week") if days % 7 == 0 else (days, "day")))
    if months == days == 0:
        for size, unit in _MICROS:
            if micros % size == 0:
                return _every(micros // size, unit)
    return f"every {interval.iso()}"


def _every(count: int, unit: str) -> str:
    return f"every {unit}" if count == 1 else f"every {plural(count, unit)}"


def moment(value: datetime) -> str:
    """ "1 March 2024, 12:00 UTC" (seconds only when there are some)."""
    value = utc(value)
    clock = value.strftime("%H:%M:%S" if value.second or value.microsecond else "%H:%M")
    return f"{value.day} {value.strftime('%B %Y')}, {clock} UTC"
