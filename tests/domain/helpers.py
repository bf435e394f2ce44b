"""Shared test helpers for the domain: terse UTC datetimes and hypothesis strategies."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from spsp_pull.domain.duration import MICROS_PER_DAY, Interval


def at(year: int, month: int = 1, day: int = 1, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def utc_datetimes(low_year: int = 1990, high_year: int = 2100) -> st.SearchStrategy[datetime]:
    """Aware UTC datetimes from the start of `low_year` to the start of `high_year`."""
    return st.datetimes(
        min_value=datetime(low_year, 1, 1), max_value=datetime(high_year, 1, 1), timezones=st.just(UTC)
    )


def intervals(max_months: int = 25, max_days: int = 40) -> st.SearchStrategy[Interval]:
    """Intervals mixing months, days and time, including month-only and tiny ones."""
    return (
        st.tuples(
            st.integers(0, max_months),
            st.integers(0, max_days),
            st.one_of(st.just(0), st.integers(1, 1000), st.integers(0, 2 * MICROS_PER_DAY)),
        )
        .filter(any)
        .map(lambda parts: Interval(*parts))
    )
