"""Intervals, times and counts in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from spsp_pull.domain.duration import parse_interval
from spsp_pull.web.words import every, moment, plural


@pytest.mark.parametrize(
    ("iso", "words"),
    [
        ("P1M", "every month"),
        ("P3M", "every 3 months"),
        ("P1Y", "every year"),
        ("P24M", "every 2 years"),
        ("P1D", "every day"),
        ("P1W", "every week"),
        ("P14D", "every 2 weeks"),
        ("P10D", "every 10 days"),
        ("PT1H", "every hour"),
        ("PT90M", "every 90 minutes"),
        ("PT30S", "every 30 seconds"),
        ("PT0.5S", "every PT0.5S"),
        ("P1M2D", "every P1M2D"),
    ],
)
def test_intervals(iso: str, words: str) -> None:
    assert every(parse_interval(iso)) == words


def test_moments_in_utc() -> None:
    assert moment(datetime(2024, 3, 1, 12, 0, tzinfo=UTC)) == "1 March 2024, 12:00 UTC"
    assert moment(datetime(2024, 3, 1, 12, 0, 5, tzinfo=UTC)) == "1 March 2024, 12:00:05 UTC"
    east = timezone(timedelta(hours=2))
    assert moment(datetime(2024, 3, 1, 1, 30, tzinfo=east)) == "29 February 2024, 23:30 UTC"


def test_plurals() -> None:
    assert (plural(1, "cycle"), plural(12, "cycle"), plural(1200, "cycle")) == (
        "1 cycle",
        "12 cycles",
        "1,200 cycles",
    )
