"""The offer maths: how many pointer units a payout debits and how much leaves on the rail.

The rate `R` is the price of one bitcoin in the asset's major unit, so with asset scale `s` one pointer
unit is worth `10**11 / (10**s * R)` msat. The arithmetic is exact (the Decimal rate as an integer
ratio); every rounding favours the payer's allowance: the debit is rounded up, the transfer down, and
the debit always covers the transfer plus the fee.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from spsp_pull.bridge.amounts import MSAT_PER_BTC, MSAT_PER_SAT, Amount, DebitUnits, Rail
from spsp_pull.domain.clock import utc
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.money import U64_MAX

_PPM = 1_000_000
_MAX_SCALE = 255


@dataclass(frozen=True)
class Asset:
    code: str
    scale: int

    def __post_init__(self) -> None:
        if not 0 <= self.scale <= _MAX_SCALE:
            raise ValueError(f"asset scale {self.scale} is outside 0..{_MAX_SCALE}")


@dataclass(frozen=True)
class FeePolicy:
    """What the payer is charged on top of the transfer: a fixed part and parts per million of it."""

    fixed_msat: int = 0
    ppm: int = 0

    def __post_init__(self) -> None:
        if self.fixed_msat < 0 or self.ppm < 0:
            raise ValueError("fees cannot be negative")

    def fee_msat(self, transfer_msat: int) -> int:
        return self.fixed_msat + _ceil_div(transfer_msat * self.ppm, _PPM)


@dataclass(frozen=True)
class Quote:
    rail: Rail
    asset: Asset
    debit_units: int
    transfer_msat: int
    fee_msat: int
    rate: Decimal
    expires_at: datetime

    @property
    def transfer_sat(self) -> int:
        """The transfer in satoshis; exact for on-chain quotes, which are always whole satoshis."""
        if self.transfer_msat % MSAT_PER_SAT:
            raise ValueError("this transfer is not a whole number of satoshis")
        return self.transfer_msat // MSAT_PER_SAT


@dataclass(frozen=True)
class _Price:
    """Value of msat in pointer units is `msat * numerator / denominator`."""

    numerator: int
    denominator: int

    @classmethod
    def of(cls, asset: Asset, rate: Decimal) -> _Price:
        if not rate.is_finite() or rate <= 0:
            raise ValueError(f"the rate must be a positive finite number, not {rate}")
        rate_num, rate_den = rate.as_integer_ratio()
        return cls(10**asset.scale * rate_num, MSAT_PER_BTC * rate_den)

    def debit_for(self, msat: int) -> int:
        """The fewest units worth at least `msat`."""
        return _ceil_div(msat * self.numerator, self.denominator)

    def msat_for(self, units: int) -> int:
        """The most msat that `units` pay for."""
        return units * self.denominator // self.numerator


def quote(
    amount: Amount,
    *,
    rail: Rail,
    asset: Asset,
    rate: Decimal,
    fees: FeePolicy,
    now: datetime,
    ttl: timedelta,
) -> Quote:
    """Quote a payout given on either side; raises InputError (`field="amount"`) when it cannot be paid.

    Price side (`DebitUnits`): the largest transfer the units pay for, fee included, in the rail's
    granularity; the debit is what that transfer and fee cost, never more than the units given.
    Transfer side (`Sats` / `Msats`): that exact transfer; the debit is the fewest units covering it and
    the fee.
    """
    price = _Price.of(asset, rate)
    granularity = rail.granularity_msat
    if isinstance(amount, DebitUnits):
        _check_range(amount.units)
        budget = price.msat_for(amount.units) - fees.fixed_msat
        transfer = max(0, budget) * _PPM // (_PPM + fees.ppm)
        transfer -= transfer % granularity
        if transfer <= 0:
            raise InputError(
                "amount-too-small",
                "the amount does not cover the smallest transfer and its fee",
                field="amount",
            )
    else:
        transfer = amount.msat
        _check_range(transfer)
        if transfer % granularity:
            raise InputError("invalid-amount", "on-chain amounts are whole satoshis", field="amount")
    fee = fees.fee_msat(transfer)
    debit = price.debit_for(transfer + fee)
    if debit > U64_MAX:
        raise InputError(
            "amount-out-of-range", "the payout costs more than the largest amount", field="amount"
        )
    return Quote(rail, asset, debit, transfer, fee, rate, utc(now) + ttl)


def _check_range(value: int) -> None:
    if not 0 < value <= U64_MAX:
        raise InputError("amount-out-of-range", f"the amount must be between 1 and {U64_MAX}", field="amount")


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)
