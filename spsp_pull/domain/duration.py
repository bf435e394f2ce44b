"""ISO 8601 durations as calendar intervals, and anchored calendar arithmetic on them.

An interval is kept as three exact integers: months (years fold in), days (weeks fold in) and microseconds
(hours, minutes and seconds fold in). Months and days stay separate because their length depends on where
they are applied; in UTC a day is always 86,400 s, so a fractional day converts exactly into microseconds.

Parsed here, with Fractions, rather than by `isodate`: its `parse_duration` turns days, weeks, hours, minutes
and seconds into floats and rounds them into a timedelta (PT0.0000001S comes out as zero, PT1.0000005S as
1.000001 s, and past 2^53 microseconds digits are lost), and accepts what an agreement must refuse (a sign,
`PT`, `P1DT`, the `P0001-02-03T04:05:06` form). Every check would have to re-read the text anyway.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import MAXYEAR, MINYEAR, datetime, timedelta
from fractions import Fraction

from spsp_pull.domain.clock import utc
from spsp_pull.domain.errors import InputError

MICROS_PER_SECOND = 1_000_000
MICROS_PER_MINUTE = 60 * MICROS_PER_SECOND
MICROS_PER_HOUR = 60 * MICROS_PER_MINUTE
MICROS_PER_DAY = 24 * MICROS_PER_HOUR

_MAX_TEXT_LENGTH = 64
# Nothing longer can have a second cycle inside datetime's years 1..9999; refusing it early keeps the
# error message clear and the arithmetic small.
_MAX_NOMINAL_DAYS = 10_000 * 366

_NUMBER = r"[0-9]+(?:[.,][0-9]+)?"
_DURATION = re.compile(
    rf"P(?:(?P<years>{_NUMBER})Y)?(?:(?P<months>{_NUMBER})M)?(?:(?P<weeks>{_NUMBER})W)?(?:(?P<days>{_NUMBER})D)?"
    rf"(?:T(?:(?P<hours>{_NUMBER})H)?(?:(?P<minutes>{_NUMBER})M)?(?:(?P<seconds>{_NUMBER})S)?)?"
)
# Per designator: which of (months, days, micros) it counts in, and how many of those one unit is.
_UNITS: dict[str, tuple[str, int]] = {
    "years": ("months", 12),
    "months": ("months", 1),
    "weeks": ("days", 7),
    "days": ("days", 1),
    "hours": ("micros", MICROS_PER_HOUR),
    "minutes": ("micros", MICROS_PER_MINUTE),
    "seconds": ("micros", MICROS_PER_SECOND),
}


class IntervalOutOfRange(InputError):
    """A point in time computed from an interval lies outside datetime's years 1..9999.

    Raised by `Interval.step`; callers read it as "beyond representable time", i.e. never.
    """

    def __init__(self, detail: str) -> None:
        super().__init__("interval-out-of-range", detail)


@dataclass(frozen=True, slots=True)
class Interval:
    months: int
    days: int
    micros: int

    def __post_init__(self) -> None:
        if min(self.months, self.days, self.micros) < 0:
            raise ValueError(f"negative interval component in {self!r}")
        if self.months == self.days == self.micros == 0:
            raise ValueError("an interval must be longer than zero")

    def iso(self) -> str:
        """Canonical ISO 8601 text: years and months split, days as days, time as H, M and decimal S."""
        years, months = divmod(self.months, 12)
        hours, rest = divmod(self.micros, MICROS_PER_HOUR)
        minutes, rest = divmod(rest, MICROS_PER_MINUTE)
        seconds, fraction = divmod(rest, MICROS_PER_SECOND)
        second_text = f"{seconds}.{fraction:06d}".rstrip("0") if fraction else str(seconds)
        date = _designated((years, "Y"), (months, "M"), (self.days, "D"))
        time = _designated((hours, "H"), (minutes, "M"))
        if seconds or fraction:
            time += f"{second_text}S"
        return f"P{date}T{time}" if time else f"P{date}"

    def step(self, anchor: datetime, n: int) -> datetime:
        """`anchor + n·interval`, computed from the anchor, never by chaining steps.

        n·months are added first, the day of month clamped to the target month's last day (so
        2024-01-31 + 1·P1M = 2024-02-29 and + 2·P1M = 2024-03-31), then n·days, then n·micros.
        Raises IntervalOutOfRange when the result is not representable.
        """
        start = utc(anchor)
        year, month_index = divmod(start.year * 12 + start.month - 1 + n * self.months, 12)
        if not MINYEAR <= year <= MAXYEAR:
            raise IntervalOutOfRange(f"{n}·{self.iso()} from {start.isoformat()} is beyond year {MAXYEAR}")
        month = month_index + 1
        day = min(start.day, calendar.monthrange(year, month)[1])
        try:
            return start.replace(year=year, month=month, day=day) + timedelta(
                microseconds=n * (self.days * MICROS_PER_DAY + self.micros)
            )
        except OverflowError:
            raise IntervalOutOfRange(
                f"{n}·{self.iso()} from {start.isoformat()} is beyond year {MAXYEAR}"
            ) from None


def _designated(*parts: tuple[int, str]) -> str:
    return "".join(f"{value}{designator}" for value, designator in parts if value)


def _invalid(detail: str) -> InputError:
    return InputError("invalid-interval", detail, field="interval")


def parse_interval(text: object) -> Interval:
    """Parse an ISO 8601 duration (`PnYnMnDTnHnMnS` in any subset, `PnW`, decimal fractions on the last
    component) into an Interval. Raises InputError('invalid-interval') for anything else, including
    negative or zero durations and fractions that do not come out as whole months / microseconds."""
    if not isinstance(text, str):
        raise _invalid("interval must be an ISO 8601 duration string such as P1M")
    if len(text) > _MAX_TEXT_LENGTH:
        raise _invalid(f"interval is longer than {_MAX_TEXT_LENGTH} characters")
    if "-" in text:
        raise _invalid(f"interval must not be negative: {text!r}")
    match = _DURATION.fullmatch(text)
    components = {name: value for name, value in match.groupdict().items() if value} if match else {}
    if not components or text.endswith("T"):
        raise _invalid(f"interval is not an ISO 8601 duration such as P1M, P1W or PT30S: {text!r}")
    *leading, _lowest = components.values()
    if any("." in value or "," in value for value in leading):
        raise _invalid(f"only the last component of {text!r} may have a fraction")

    totals = {"months": Fraction(0), "days": Fraction(0), "micros": Fraction(0)}
    for name, value in components.items():
        unit, size = _UNITS[name]
        totals[unit] += Fraction(value.replace(",", ".")) * size
    whole_days = totals["days"].numerator // totals["days"].denominator
    micros = totals["micros"] + (totals["days"] - whole_days) * MICROS_PER_DAY
    if totals["months"].denominator != 1:
        raise _invalid(f"{text!r} is not a whole number of months")
    if micros.denominator != 1:
        raise _invalid(f"{text!r} is finer than a microsecond")
    months = totals["months"].numerator
    if months == whole_days == micros == 0:
        raise _invalid(f"interval must be longer than zero: {text!r}")
    if months * 31 + whole_days + micros.numerator // MICROS_PER_DAY > _MAX_NOMINAL_DAYS:
        raise _invalid(f"interval {text!r} is longer than 10,000 years")
    return Interval(months=months, days=whole_days, micros=micros.numerator)
