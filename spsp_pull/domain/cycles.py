"""Which cycle of an anchored interval a moment falls in, without walking the elapsed cycles."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spsp_pull.domain.clock import utc
from spsp_pull.domain.duration import MICROS_PER_DAY, MICROS_PER_SECOND, Interval, IntervalOutOfRange

NEVER = datetime.max.replace(tzinfo=UTC)
"""The end of a cycle whose end lies beyond representable time: it never ends."""


def cycle_at(anchor: datetime, interval: Interval, now: datetime) -> int:
    """0 before `anchor`, else the 1-based k with `step(anchor, k-1) <= now < step(anchor, k)`.

    Adding m months spans between 28·m and 31·m days (clamping the day of month only shortens a span,
    and never below the lengths of the m months it ends with), so the number of whole steps elapsed
    lies between `elapsed // longest` and `elapsed // shortest`; a binary search settles it in
    O(log n) calls of `step`, and at once when the interval has no months.
    """
    start, moment = utc(anchor), utc(now)
    if moment < start:
        return 0
    elapsed = _micros(moment - start)
    fixed = interval.days * MICROS_PER_DAY + interval.micros
    shortest = interval.months * 28 * MICROS_PER_DAY + fixed
    longest = interval.months * 31 * MICROS_PER_DAY + fixed
    reached = elapsed // longest  # step(reached) <= now
    beyond = elapsed // shortest + 1  # step(beyond) > now
    while beyond - reached > 1:
        middle = (reached + beyond) // 2
        if _has_reached(start, interval, middle, moment):
            reached = middle
        else:
            beyond = middle
    return reached + 1


def cycle_window(anchor: datetime, interval: Interval, k: int) -> tuple[datetime, datetime]:
    """Cycle k (1-based) as `[start, end)`. The end is NEVER when it lies beyond representable time;
    a cycle that would begin beyond it raises IntervalOutOfRange."""
    if k < 1:
        raise ValueError(f"cycles are numbered from 1, not {k}")
    start = interval.step(anchor, k - 1)
    try:
        end = interval.step(anchor, k)
    except IntervalOutOfRange:
        end = NEVER
    return start, end


def _has_reached(anchor: datetime, interval: Interval, n: int, now: datetime) -> bool:
    try:
        return interval.step(anchor, n) <= now
    except IntervalOutOfRange:
        return False


def _micros(span: timedelta) -> int:
    return span.days * MICROS_PER_DAY + span.seconds * MICROS_PER_SECOND + span.microseconds
