"""Exchange rates behind a small interface, and the conversions that never let out uncovered value.

A rate `BASE/QUOTE = r` means one whole unit of BASE buys r whole units of QUOTE. Amounts are integers in
minor units, so a conversion also moves between asset scales. What may be *sent* is converted down (floor);
what *was sent* is turned into a debit up (ceil), on cumulative totals, never per packet.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, InvalidOperation
from fractions import Fraction
from typing import Protocol

from spsp_pull.config_error import ConfigError

_EXACT = Context(prec=80)


class RateUnavailable(LookupError):
    """No rate is known between two assets."""


@dataclass(frozen=True, slots=True)
class Asset:
    code: str
    scale: int


class RateSource(Protocol):
    async def rate(self, base: str, quote: str) -> Decimal:
        """Whole units of `quote` one whole unit of `base` buys."""


class StaticRates:
    """Rates from configuration (`SPSP_RATES`); the inverse pair is derived when only one is given."""

    def __init__(self, rates: Mapping[str, Decimal]) -> None:
        self._rates = {pair.upper(): rate for pair, rate in rates.items()}

    async def rate(self, base: str, quote: str) -> Decimal:
        base, quote = base.upper(), quote.upper()
        if base == quote:
            return Decimal(1)
        direct = self._rates.get(f"{base}/{quote}")
        if direct is not None:
            return direct
        inverse = self._rates.get(f"{quote}/{base}")
        if inverse is not None:
            return _EXACT.divide(Decimal(1), inverse)
        raise RateUnavailable(f"no exchange rate for {base}/{quote}")


@dataclass(frozen=True, slots=True)
class Conversion:
    """From minor units of `source` to minor units of `target` at an exact ratio."""

    ratio: Fraction  # target minor units per source minor unit

    @classmethod
    def between(cls, source: Asset, target: Asset, rate: Decimal) -> Conversion:
        if not rate.is_finite() or rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        return cls(Fraction(rate) * Fraction(10) ** (target.scale - source.scale))

    def floor(self, amount: int) -> int:
        """The most target units `amount` source units cover."""
        return (amount * self.ratio.numerator) // self.ratio.denominator

    def ceil_back(self, target_amount: int) -> int:
        """The fewest source units that cover `target_amount` target units (the debit for value sent)."""
        return -((-target_amount * self.ratio.denominator) // self.ratio.numerator)


def parse_rates(text: str) -> dict[str, Decimal]:
    """`{"EUR/XRP": "2.5"}`: 1 EUR buys 2.5 XRP. JSON numbers are read as exact decimals from their text."""
    try:
        raw = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"SPSP_RATES must be a JSON object of decimal strings: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError('SPSP_RATES must be a JSON object such as {"EUR/XRP": "2.5"}')
    rates: dict[str, Decimal] = {}
    for pair, value in raw.items():
        base, _, quote = pair.partition("/")
        if not base or not quote:
            raise ConfigError(f"SPSP_RATES: {pair!r} is not a BASE/QUOTE pair")
        try:
            rate = Decimal(str(value))
        except InvalidOperation:
            raise ConfigError(f"SPSP_RATES: {pair} has no decimal rate: {value!r}") from None
        if not rate.is_finite() or rate <= 0:
            raise ConfigError(f"SPSP_RATES: {pair} must be a positive rate, not {value!r}")
        rates[f"{base.upper()}/{quote.upper()}"] = rate
    return rates
