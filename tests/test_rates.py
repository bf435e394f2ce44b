"""Conversions never cover more than the allowance: floor going out, ceil coming back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spsp_pull.rates import Asset, Conversion, RateUnavailable, StaticRates

USD2 = Asset("USD", 2)
XRP9 = Asset("XRP", 9)


async def test_static_rates_direct_inverse_and_missing() -> None:
    rates = StaticRates({"usd/xrp": Decimal("2.5")})
    assert await rates.rate("USD", "XRP") == Decimal("2.5")
    assert await rates.rate("XRP", "USD") == Decimal("0.4")
    assert await rates.rate("EUR", "EUR") == 1
    with pytest.raises(RateUnavailable):
        await rates.rate("EUR", "XRP")


def test_conversion_between_scales() -> None:
    conversion = Conversion.between(USD2, XRP9, Decimal("2.5"))
    assert conversion.floor(100) == 2_500_000_000  # 1.00 USD -> 2.5 XRP
    assert conversion.ceil_back(2_500_000_000) == 100
    assert conversion.ceil_back(2_500_000_001) == 101
    assert conversion.ceil_back(1) == 1


@given(
    allowance=st.integers(0, 2**64 - 1),
    rate=st.decimals(min_value=Decimal("0.000001"), max_value=Decimal("1000000"), places=6),
    source_scale=st.integers(0, 12),
    target_scale=st.integers(0, 12),
    sent_fraction=st.fractions(0, 1),
)
def test_what_is_sent_never_costs_more_than_the_allowance(
    allowance: int, rate: Decimal, source_scale: int, target_scale: int, sent_fraction: object
) -> None:
    conversion = Conversion.between(Asset("A", source_scale), Asset("B", target_scale), rate)
    budget = conversion.floor(allowance)
    from fractions import Fraction

    assert isinstance(sent_fraction, Fraction)
    sent = int(budget * sent_fraction)
    debit = conversion.ceil_back(sent)
    assert debit <= allowance
    assert conversion.floor(debit) >= sent  # the debit really covers what was sent
