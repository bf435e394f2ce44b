from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spsp_pull.domain.errors import InputError
from spsp_pull.domain.money import U64_MAX, parse_amount, parse_count


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1),
        ("1", 1),
        ("1000", 1000),
        ("007", 7),
        (U64_MAX, U64_MAX),
        (str(U64_MAX), U64_MAX),
    ],
)
def test_amounts_accepted(value: object, expected: int) -> None:
    assert parse_amount(value, "amount") == expected


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ("abc", "invalid-amount"),
        ("1.5", "invalid-amount"),
        (1.5, "invalid-amount"),
        (2.0, "invalid-amount"),
        ("1e3", "invalid-amount"),
        (" 1", "invalid-amount"),
        ("1 ", "invalid-amount"),
        ("+1", "invalid-amount"),
        ("", "invalid-amount"),
        ("-", "invalid-amount"),
        ("\N{FULLWIDTH DIGIT ONE}", "invalid-amount"),  # digits are ASCII only
        (True, "invalid-amount"),
        (None, "invalid-amount"),
        ([1], "invalid-amount"),
        (0, "amount-out-of-range"),
        ("0", "amount-out-of-range"),
        (-1, "amount-out-of-range"),
        ("-5", "amount-out-of-range"),
        (U64_MAX + 1, "amount-out-of-range"),
        (str(U64_MAX + 1), "amount-out-of-range"),
        ("9" * 5000, "amount-out-of-range"),
    ],
)
def test_amounts_refused(value: object, code: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_amount(value, "amount")
    assert (caught.value.code, caught.value.field, caught.value.status) == (code, "amount", 422)


def test_zero_when_allowed() -> None:
    assert parse_amount(0, "min", allow_zero=True) == 0
    assert parse_amount("0", "min", allow_zero=True) == 0
    with pytest.raises(InputError, match="between 0 and"):
        parse_amount(-1, "min", allow_zero=True)


@given(st.integers(1, U64_MAX))
def test_integer_and_string_forms_agree(n: int) -> None:
    assert parse_amount(n, "amount") == parse_amount(str(n), "amount") == n


@pytest.mark.parametrize(("value", "expected"), [(0, 0), ("255", 255), ("00012", 12)])
def test_counts_accepted(value: object, expected: int) -> None:
    assert parse_count(value, "assetScale", 0, 255, "invalid-asset-scale") == expected


@pytest.mark.parametrize("value", [256, -1, "-1", "1.0", 1.0, False, None, "x", "9" * 100])
def test_counts_refused_with_the_given_code(value: object) -> None:
    with pytest.raises(InputError) as caught:
        parse_count(value, "assetScale", 0, 255, "invalid-asset-scale")
    assert (caught.value.code, caught.value.field) == ("invalid-asset-scale", "assetScale")
