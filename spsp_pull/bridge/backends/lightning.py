"""What the bridge needs from a Lightning node, whatever implementation provides it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from spsp_pull.bridge.backends.outcomes import Outcome
from spsp_pull.bridge.network import Network


@dataclass(frozen=True)
class PaymentProof:
    preimage: bytes
    value_msat: int
    fee_msat: int


@dataclass(frozen=True)
class NodeInvoice:
    """An invoice as the node decodes it (the node's view is the one it will pay)."""

    payment_hash: bytes
    amount_msat: int | None
    expires_at: datetime
    payee: str


class LightningNode(Protocol):
    async def network(self) -> Network: ...

    async def decode_invoice(self, invoice: str) -> NodeInvoice: ...

    async def outbound_msat(self) -> int: ...

    async def pay(
        self,
        invoice: str,
        payment_hash: bytes,
        *,
        fee_limit_msat: int,
        time_limit: timedelta,
        amount_msat: int | None = None,
    ) -> Outcome[PaymentProof]: ...

    async def track(self, payment_hash: bytes, *, wait: timedelta) -> Outcome[PaymentProof]: ...
