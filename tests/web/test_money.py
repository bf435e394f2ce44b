"""Amounts for people: the asset's decimals, exactly, at every size."""

from __future__ import annotations

import pytest

from spsp_pull.domain.money import U64_MAX
from spsp_pull.web.money import format_amount, format_money


@pytest.mark.parametrize(
    ("amount", "scale", "text"),
    [
        (1000, 2, "10.00"),
        (5, 2, "0.05"),
        (0, 2, "0.00"),
        (123456789, 2, "1,234,567.89"),
        (7, 0, "7"),
        (5000, 9, "0.000005000"),
        (U64_MAX, 9, "18,446,744,073.709551615"),
        (U64_MAX, 0, "18,446,744,073,709,551,615"),
        (1, 30, "0." + "0" * 29 + "1"),
    ],
)
def test_amounts_keep_every_digit(amount: int, scale: int, text: str) -> None:
    assert format_amount(amount, scale) == text


def test_money_names_the_asset() -> None:
    assert format_money(1000, 2, "USD") == "10.00 USD"
