"""The event envelope: id, type, createdAt, data; pull.completed keeps its former fields at the top too."""

from __future__ import annotations

import pytest

from spsp_pull.domain import events
from tests.domain.helpers import at


def test_an_event_is_its_envelope_around_the_data() -> None:
    data: dict[str, object] = {"token": "abc", "state": "paused"}
    assert events.envelope(42, events.POINTER_PAUSED, at(2026, 12, 3, 10), data) == {
        "id": "42",
        "type": "pointer.paused",
        "createdAt": "2026-12-03T10:00:00.000Z",
        "data": {"token": "abc", "state": "paused"},
    }


def test_a_completed_pull_carries_its_former_fields_at_the_top_as_well() -> None:
    data: dict[str, object] = {"balanceTotal": "5", "pointer": "$h/t", "event": "pull.completed"}
    body = events.envelope(7, events.PULL_COMPLETED, at(2026), data)
    assert body == {
        **data,
        "id": "7",
        "type": "pull.completed",
        "createdAt": "2026-01-01T00:00:00.000Z",
        "data": data,
    }


@pytest.mark.parametrize(
    ("used", "available", "low"),
    [
        (0, 0, False),
        (799, 201, False),
        (800, 200, True),
        (4, 1, True),
        (3, 1, False),
        (1, 0, True),
        (1000, 0, True),
    ],
)
def test_allowance_low_at_eighty_percent_of_what_the_cycle_makes_pullable(
    used: int, available: int, low: bool
) -> None:
    assert events.allowance_low(used, available) is low
