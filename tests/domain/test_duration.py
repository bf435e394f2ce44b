from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spsp_pull.domain.duration import (
    MICROS_PER_HOUR,
    MICROS_PER_SECOND,
    Interval,
    IntervalOutOfRange,
    parse_interval,
)
from spsp_pull.domain.errors import InputError
from tests.domain.helpers import at, intervals, utc_datetimes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("P1M", Interval(1, 0, 0)),
        ("P0Y1M", Interval(1, 0, 0)),
        ("P0Y1M0DT0H0M0S", Interval(1, 0, 0)),
        ("P1Y", Interval(12, 0, 0)),
        ("P1Y2M3DT4H5M6S", Interval(14, 3, 4 * MICROS_PER_HOUR + 5 * 60_000_000 + 6 * MICROS_PER_SECOND)),
        ("P2W", Interval(0, 14, 0)),
        ("P1D", Interval(0, 1, 0)),
        ("PT1S", Interval(0, 0, MICROS_PER_SECOND)),
        ("PT1M", Interval(0, 0, 60 * MICROS_PER_SECOND)),
        ("PT0.5S", Interval(0, 0, 500_000)),
        ("PT1,5S", Interval(0, 0, 1_500_000)),
        ("PT0.000001S", Interval(0, 0, 1)),
        ("PT1.500000000S", Interval(0, 0, 1_500_000)),
        ("PT1.5H", Interval(0, 0, 90 * 60 * MICROS_PER_SECOND)),
        ("P1.5Y", Interval(18, 0, 0)),
        ("P0.25Y", Interval(3, 0, 0)),
        ("P1.5W", Interval(0, 10, 12 * MICROS_PER_HOUR)),
        ("P1.5D", Interval(0, 1, 12 * MICROS_PER_HOUR)),
        ("P1M15D", Interval(1, 15, 0)),
        ("PT36H", Interval(0, 0, 36 * MICROS_PER_HOUR)),
        # Exact beyond a float's 53 bits (isodate's float parse loses the last microsecond).
        ("PT316000000000.000001S", Interval(0, 0, 316_000_000_000 * MICROS_PER_SECOND + 1)),
        ("PT9007199254.740993S", Interval(0, 0, 9_007_199_254_740_993)),
    ],
)
def test_parse(text: str, expected: Interval) -> None:
    assert parse_interval(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "P",
        "PT",
        "P1DT",
        "garbage",
        "1M",
        "p1m",
        " P1M",
        "P1M ",
        "P1S",  # seconds need the T
        "PT1D",  # days must not follow the T
        "P1M1Y",  # out of order
        "PT-1S",
        "-P1D",
        "P-1M",
        "P0D",
        "PT0S",
        "P0Y0M0DT0H0M0S",
        "P0.5M",  # months have no exact smaller unit
        "P0.1Y",  # 1.2 months
        "PT0.0000001S",  # finer than a microsecond
        "P1.5DT1H",  # only the last component may have a fraction
        "PT1.S",
        "PT.5S",
        "P\N{FULLWIDTH DIGIT ONE}D",
        "P10001Y",
        "P" + "1" * 70 + "D",
        # What isodate would round or accept: sub-microsecond digits, a sign, the alternative form.
        "PT1.0000005S",
        "PT0.0000015S",
        "+P1D",
        "P0001-02-03T04:05:06",
        "P0000-00-01",
    ],
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_interval(text)
    assert (caught.value.code, caught.value.field) == ("invalid-interval", "interval")


@pytest.mark.parametrize("value", [None, 30, b"P1M", ["P1M"]])
def test_parse_refuses_non_strings(value: object) -> None:
    with pytest.raises(InputError, match="string"):
        parse_interval(value)


@pytest.mark.parametrize(
    ("interval", "text"),
    [
        (Interval(1, 0, 0), "P1M"),
        (Interval(12, 0, 0), "P1Y"),
        (Interval(14, 3, 4 * MICROS_PER_HOUR + 5 * 60_000_000 + 6_500_000), "P1Y2M3DT4H5M6.5S"),
        (Interval(0, 0, MICROS_PER_SECOND), "PT1S"),
        (Interval(0, 7, 0), "P7D"),
        (Interval(0, 0, 1), "PT0.000001S"),
        (Interval(0, 1, 12 * MICROS_PER_HOUR), "P1DT12H"),
    ],
)
def test_iso(interval: Interval, text: str) -> None:
    assert interval.iso() == text


@given(intervals(max_months=10**5, max_days=10**5))
def test_iso_round_trips(interval: Interval) -> None:
    assert parse_interval(interval.iso()) == interval


@pytest.mark.parametrize(("months", "days", "micros"), [(0, 0, 0), (-1, 1, 0), (0, -1, 0), (0, 0, -1)])
def test_intervals_are_positive(months: int, days: int, micros: int) -> None:
    with pytest.raises(ValueError, match="interval"):
        Interval(months, days, micros)


MONTHLY = Interval(1, 0, 0)
YEARLY = Interval(12, 0, 0)


@pytest.mark.parametrize(
    ("anchor", "interval", "n", "expected"),
    [
        (at(2024, 1, 31), MONTHLY, 1, at(2024, 2, 29)),
        (at(2024, 1, 31), MONTHLY, 2, at(2024, 3, 31)),
        (at(2024, 1, 31), MONTHLY, 3, at(2024, 4, 30)),
        (at(2024, 1, 31), MONTHLY, 12, at(2025, 1, 31)),
        (at(2023, 1, 31), MONTHLY, 1, at(2023, 2, 28)),
        (at(2023, 1, 31), MONTHLY, 2, at(2023, 3, 31)),
        (at(2024, 2, 29), YEARLY, 1, at(2025, 2, 28)),
        (at(2024, 2, 29), YEARLY, 4, at(2028, 2, 29)),
        (at(2024, 2, 29), Interval(48, 0, 0), 1, at(2028, 2, 29)),
        (at(2024, 1, 31, 13, 5, 7), MONTHLY, 1, at(2024, 2, 29, 13, 5, 7)),
        # months first (clamped), then days: Jan 31 -> Feb 29 -> +15 d
        (at(2024, 1, 31), Interval(1, 15, 0), 1, at(2024, 3, 15)),
        (at(2024, 1, 31), Interval(1, 15, 0), 2, at(2024, 4, 30)),
        (at(2024, 1, 31), Interval(0, 1, 12 * MICROS_PER_HOUR), 2, at(2024, 2, 3)),
        (at(2024, 1, 31), MONTHLY, 0, at(2024, 1, 31)),
        (at(2024, 3, 31), MONTHLY, -1, at(2024, 2, 29)),
    ],
)
def test_step(anchor: datetime, interval: Interval, n: int, expected: datetime) -> None:
    assert interval.step(anchor, n) == expected


def test_step_is_anchored_not_chained() -> None:
    anchor = at(2024, 1, 31)
    chained = MONTHLY.step(MONTHLY.step(anchor, 1), 1)
    assert chained == at(2024, 3, 29)
    assert MONTHLY.step(anchor, 2) == at(2024, 3, 31)


def test_step_normalises_other_offsets_to_utc() -> None:
    from datetime import timezone

    plus_two = datetime(2024, 2, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))  # = 2024-01-31T23:00Z
    assert MONTHLY.step(plus_two, 1) == at(2024, 2, 29, 23)


def test_step_refuses_naive_anchor() -> None:
    with pytest.raises(ValueError, match="naive"):
        MONTHLY.step(datetime(2024, 1, 1), 1)


@pytest.mark.parametrize(
    ("anchor", "interval", "n"),
    [
        (at(9999, 12, 1), MONTHLY, 1),
        (at(9999, 12, 31), Interval(0, 1, 0), 1),
        (at(9999, 12, 31, 23, 59, 59), Interval(0, 0, MICROS_PER_SECOND), 1),
        (at(2024), Interval(0, 0, 1), 10**18),
        (at(2024), YEARLY, 10**12),
        (at(1, 1, 1), MONTHLY, -1),
    ],
)
def test_step_beyond_representable_time(anchor: datetime, interval: Interval, n: int) -> None:
    with pytest.raises(IntervalOutOfRange) as caught:
        interval.step(anchor, n)
    assert caught.value.code == "interval-out-of-range"
    assert isinstance(caught.value, InputError)


@given(utc_datetimes(), intervals(), st.integers(0, 500))
def test_step_strictly_increases(anchor: datetime, interval: Interval, n: int) -> None:
    assert interval.step(anchor, n) < interval.step(anchor, n + 1)


@given(utc_datetimes(), st.integers(0, 400), st.integers(0, 10**11), st.integers(0, 1000))
def test_step_without_months_is_plain_addition(anchor: datetime, days: int, micros: int, n: int) -> None:
    if days == micros == 0:
        return
    expected = anchor + n * timedelta(days=days, microseconds=micros)
    assert Interval(0, days, micros).step(anchor, n) == expected


@given(utc_datetimes(), st.integers(1, 24), st.integers(0, 300))
def test_month_steps_keep_the_day_or_clamp_to_month_end(anchor: datetime, months: int, n: int) -> None:
    stepped = Interval(months, 0, 0).step(anchor, n)
    assert (stepped.year * 12 + stepped.month) - (anchor.year * 12 + anchor.month) == n * months
    assert stepped.time() == anchor.time()
    next_day = stepped + timedelta(days=1)
    assert stepped.day == anchor.day or (stepped.day < anchor.day and next_day.month != stepped.month)
