"""Payout amounts: the rail that carries them and the side they are given on.

The price side is the pointer's asset in minor units; the transfer side is what leaves on the rail, in
satoshis (on-chain) or millisatoshis (Lightning). One satoshi is 1,000 msat; one bitcoin 10**11 msat.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypeAlias

MSAT_PER_SAT = 1_000
MSAT_PER_BTC = 100_000_000_000
SAT_PER_BTC = 100_000_000
MAX_MONEY_SAT = 21_000_000 * SAT_PER_BTC


class Rail(StrEnum):
    ONCHAIN = "onchain"
    LIGHTNING = "lightning"

    @property
    def granularity_msat(self) -> int:
        """The smallest amount the rail can carry: whole satoshis on-chain, msat over Lightning."""
        return MSAT_PER_SAT if self is Rail.ONCHAIN else 1


@dataclass(frozen=True)
class DebitUnits:
    """An amount on the price side: the pointer's asset, in minor units."""

    units: int


@dataclass(frozen=True)
class Sats:
    """An amount on the transfer side, in satoshis."""

    sat: int

    @property
    def msat(self) -> int:
        return self.sat * MSAT_PER_SAT


@dataclass(frozen=True)
class Msats:
    """An amount on the transfer side, in millisatoshis."""

    msat: int


Amount: TypeAlias = DebitUnits | Sats | Msats
