"""What the bridge needs from an on-chain wallet, whatever node provides it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from spsp_pull.bridge.backends.outcomes import Outcome
from spsp_pull.bridge.network import Network


@dataclass(frozen=True)
class Outpoint:
    txid: str
    vout: int


@dataclass(frozen=True)
class PayTo:
    address: str
    amount_sat: int


@dataclass(frozen=True)
class SignedTransaction:
    """A fully signed transaction, not yet broadcast: store it, then broadcast (any number of times)."""

    txid: str
    hex: str
    fee_sat: int
    inputs: tuple[Outpoint, ...]


@dataclass(frozen=True)
class TxStatus:
    txid: str
    confirmations: int
    wallet_conflicts: tuple[str, ...] = ()
    replaced_by: str | None = None

    @property
    def conflicted(self) -> bool:
        """A conflicting transaction is in the chain (Bitcoin Core reports negative confirmations)."""
        return self.confirmations < 0


class OnchainWallet(Protocol):
    async def network(self) -> Network: ...

    async def create_transaction(
        self, outputs: Sequence[PayTo], *, conf_target: int, fallback_fee_rate: Decimal
    ) -> SignedTransaction: ...

    async def broadcast(self, tx_hex: str) -> Outcome[str]: ...

    async def transaction_status(self, txid: str) -> TxStatus | None: ...

    async def release_inputs(self, inputs: Sequence[Outpoint]) -> None: ...
