from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given

from spsp_pull.domain.clock import ManualClock, SystemClock, isoformat_z, parse_timestamp, utc
from spsp_pull.domain.errors import InputError
from tests.domain.helpers import at, utc_datetimes


def test_manual_clock_moves_only_when_told() -> None:
    clock = ManualClock(at(2024, 1, 31))
    assert clock.now() == at(2024, 1, 31)
    clock.advance(timedelta(days=30))
    assert clock.now() == at(2024, 3, 1)
    clock.set(datetime(2024, 6, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    assert clock.now() == at(2024, 6, 1)
    assert clock.now().tzinfo is UTC


def test_system_clock_is_utc() -> None:
    assert SystemClock().now().utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2024, 1, 1)
    with pytest.raises(ValueError, match="naive"):
        utc(naive)
    with pytest.raises(ValueError, match="naive"):
        ManualClock(naive)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (at(2024, 1, 31), "2024-01-31T00:00:00.000Z"),
        (at(2024, 1, 31) + timedelta(microseconds=893_999), "2024-01-31T00:00:00.893Z"),
        (datetime(2024, 2, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))), "2024-01-31T23:30:00.000Z"),
        (datetime(5, 1, 1, tzinfo=UTC), "0005-01-01T00:00:00.000Z"),
    ],
)
def test_isoformat_z(moment: datetime, text: str) -> None:
    assert isoformat_z(moment) == text


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2019-03-06T00:42:30.893Z", at(2019, 3, 6, 0, 42, 30) + timedelta(milliseconds=893)),
        ("2024-01-31T00:00:00Z", at(2024, 1, 31)),
        ("2024-02-01T02:00:00+02:00", at(2024, 2, 1)),
        ("2024-01-31T19:00:00-05:00", at(2024, 2, 1)),
    ],
)
def test_parse_timestamp(text: str, moment: datetime) -> None:
    parsed = parse_timestamp(text, "start")
    assert parsed == moment
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    ["2024-01-31", "2024-01-31T00:00:00", "tomorrow", "", "0001-01-01T00:00:00+01:00", 1706659200, None],
)
def test_parse_timestamp_refuses(text: object) -> None:
    with pytest.raises(InputError) as caught:
        parse_timestamp(text, "expiry")
    assert (caught.value.code, caught.value.field, caught.value.status) == (
        "invalid-timestamp",
        "expiry",
        422,
    )


@given(utc_datetimes(low_year=1, high_year=9999))
def test_millisecond_text_round_trips(moment: datetime) -> None:
    truncated = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    assert parse_timestamp(isoformat_z(moment), "start") == truncated


def test_input_error_carries_its_parts() -> None:
    error = InputError("asset-immutable", "assetCode cannot be changed", status=409, field="assetCode")
    assert (error.code, error.detail, error.status, error.field) == (
        "asset-immutable",
        "assetCode cannot be changed",
        409,
        "assetCode",
    )
    assert str(error) == "assetCode cannot be changed"
    assert InputError("x", "y").status == 422
