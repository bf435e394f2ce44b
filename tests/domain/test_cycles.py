from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spsp_pull.domain.cycles import NEVER, cycle_at, cycle_window
from spsp_pull.domain.duration import MICROS_PER_DAY, MICROS_PER_SECOND, Interval, IntervalOutOfRange
from tests.domain.helpers import at, intervals, utc_datetimes

MONTHLY = Interval(1, 0, 0)
SECONDLY = Interval(0, 0, MICROS_PER_SECOND)
MICROSECOND = timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (at(2024, 1, 30), 0),
        (at(2024, 1, 31) - MICROSECOND, 0),
        (at(2024, 1, 31), 1),
        (at(2024, 2, 29) - MICROSECOND, 1),
        (at(2024, 2, 29), 2),
        (at(2024, 3, 30), 2),
        (at(2024, 3, 31), 3),
        (at(2024, 4, 30), 4),
        (at(2025, 1, 31), 13),
        (at(2124, 1, 31), 1201),
    ],
)
def test_month_end_anchor(now: datetime, expected: int) -> None:
    assert cycle_at(at(2024, 1, 31), MONTHLY, now) == expected


def test_windows_are_anchored() -> None:
    anchor = at(2024, 1, 31)
    assert [cycle_window(anchor, MONTHLY, k) for k in (1, 2, 3, 4)] == [
        (at(2024, 1, 31), at(2024, 2, 29)),
        (at(2024, 2, 29), at(2024, 3, 31)),
        (at(2024, 3, 31), at(2024, 4, 30)),
        (at(2024, 4, 30), at(2024, 5, 31)),
    ]


def test_mixed_month_and_day_interval() -> None:
    anchor, interval = at(2024, 1, 31), Interval(1, 15, 0)
    assert cycle_window(anchor, interval, 2) == (at(2024, 3, 15), at(2024, 4, 30))
    assert cycle_at(anchor, interval, at(2024, 3, 15) - MICROSECOND) == 1
    assert cycle_at(anchor, interval, at(2024, 3, 15)) == 2
    assert cycle_at(anchor, interval, at(2024, 4, 30)) == 3


def _walk(anchor: datetime, interval: Interval, now: datetime) -> int:
    if now < anchor:
        return 0
    n = 0
    while interval.step(anchor, n + 1) <= now:
        n += 1
    return n + 1


@given(utc_datetimes(), intervals(), st.data())
def test_agrees_with_brute_force_walk(anchor: datetime, interval: Interval, data: st.DataObject) -> None:
    longest = (interval.months * 31 + interval.days) * MICROS_PER_DAY + interval.micros
    offset = data.draw(st.integers(-longest, 40 * longest), label="micros after anchor")
    now = anchor + timedelta(microseconds=offset)
    assert cycle_at(anchor, interval, now) == _walk(anchor, interval, now)


@given(utc_datetimes(), intervals(), utc_datetimes(high_year=2200))
def test_now_lies_in_its_window(anchor: datetime, interval: Interval, now: datetime) -> None:
    k = cycle_at(anchor, interval, now)
    if k == 0:
        assert now < anchor
    else:
        start, end = cycle_window(anchor, interval, k)
        assert start <= now < end


@pytest.mark.parametrize(
    ("anchor", "interval"),
    [
        (at(2023, 5, 31, 12), Interval(1, 2, 3)),
        (at(2023, 1, 31), MONTHLY),  # a month of 28 days (February clamped), the shortest a month step can be
        (at(2023, 1, 1), Interval(1, 29, 0)),  # more days than the shortest month has
    ],
)
def test_exact_boundaries_start_the_next_cycle(anchor: datetime, interval: Interval) -> None:
    for k in range(1, 200):
        start, end = cycle_window(anchor, interval, k)
        assert cycle_at(anchor, interval, start) == k
        assert cycle_at(anchor, interval, end - MICROSECOND) == k


def test_fast_for_ten_years_of_seconds() -> None:
    anchor = at(2024)
    now = at(2034, 1, 1, 0, 0, 1)
    expected = (now - anchor) // timedelta(seconds=1) + 1
    began = time.perf_counter_ns()
    for _ in range(1000):
        assert cycle_at(anchor, SECONDLY, now) == expected
    assert expected > 3 * 10**8
    assert time.perf_counter_ns() - began < 1_000_000_000


def test_fast_for_millennia_of_months() -> None:
    began = time.perf_counter_ns()
    for _ in range(100):
        assert cycle_at(at(1, 1, 31), MONTHLY, at(9999, 12, 31)) == 9999 * 12
    assert time.perf_counter_ns() - began < 1_000_000_000


def test_microsecond_interval_over_a_century() -> None:
    anchor = at(2000)
    now = at(2100) + timedelta(microseconds=7)
    assert cycle_at(anchor, Interval(0, 0, 1), now) == (now - anchor) // MICROSECOND + 1


def test_last_representable_cycle_never_ends() -> None:
    anchor = at(9999, 10, 31)
    assert cycle_at(anchor, MONTHLY, at(9999, 12, 31)) == 3
    assert cycle_window(anchor, MONTHLY, 3) == (at(9999, 12, 31), NEVER)
    assert cycle_at(anchor, Interval(0, 20 * 365 * 1, 0), NEVER) == 1


def test_cycle_beyond_representable_time_has_no_window() -> None:
    with pytest.raises(IntervalOutOfRange):
        cycle_window(at(9999, 10, 31), MONTHLY, 4)


@pytest.mark.parametrize("k", [0, -1])
def test_cycles_count_from_one(k: int) -> None:
    with pytest.raises(ValueError, match="from 1"):
        cycle_window(at(2024), MONTHLY, k)


def test_huge_days_interval() -> None:
    interval = Interval(0, 3_000_000, MICROS_PER_DAY - 1)
    assert cycle_at(at(2000), interval, at(9999, 12, 31)) == 1
