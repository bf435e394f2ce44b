"""Times in words for people: UTC, to the minute."""

from __future__ import annotations

from datetime import UTC, datetime


def format_time(moment: datetime) -> str:
    """`2026-12-03T14:30:59Z` is "3 Dec 2026, 14:30 UTC"."""
    at = moment.astimezone(UTC)
    return f"{at.day} {at:%b %Y, %H:%M} UTC"
