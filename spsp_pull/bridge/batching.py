"""Shaping a window's on-chain payouts into one transaction's outputs (pure).

Payouts to the same output script become one output paying their sum (Bitcoin Core refuses an address
twice in one transaction, and `BC1Q…` and `bc1q…` are the same script); each payout then finds its
output by script in the signed transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from embit.transaction import Transaction

from spsp_pull.bridge.amounts import MSAT_PER_SAT
from spsp_pull.bridge.backends.onchain import PayTo
from spsp_pull.store.payouts import PayoutRecord


@dataclass(frozen=True)
class Output:
    script_pubkey: str
    address: str
    amount_sat: int
    payout_ids: tuple[int, ...]

    @property
    def pay_to(self) -> PayTo:
        return PayTo(self.address, self.amount_sat)


def group_outputs(payouts: Sequence[PayoutRecord]) -> list[Output]:
    """One output per script, in the order the scripts first appear, paying the sum of its payouts."""
    grouped: dict[str, Output] = {}
    for payout in payouts:
        if payout.script_pubkey is None or payout.address is None:
            raise ValueError(f"payout {payout.id} has no output script")
        if payout.transfer_msat % MSAT_PER_SAT:
            raise ValueError(f"payout {payout.id} is not a whole number of satoshis")
        sat = payout.transfer_msat // MSAT_PER_SAT
        known = grouped.get(payout.script_pubkey)
        if known is None:
            grouped[payout.script_pubkey] = Output(payout.script_pubkey, payout.address, sat, (payout.id,))
        else:
            grouped[payout.script_pubkey] = Output(
                known.script_pubkey, known.address, known.amount_sat + sat, (*known.payout_ids, payout.id)
            )
    return list(grouped.values())


def output_indexes(tx_hex: str, outputs: Sequence[Output]) -> dict[int, int]:
    """Payout id -> vout of the output paying it in the signed transaction; ValueError if one is
    missing (the wallet must pay exactly what was asked)."""
    vout = Transaction.from_string(tx_hex).vout
    found: dict[int, int] = {}
    taken: set[int] = set()
    for output in outputs:
        script = bytes.fromhex(output.script_pubkey)
        index = next(
            (
                i
                for i, out in enumerate(vout)
                if i not in taken
                and bytes(out.script_pubkey.data) == script
                and out.value == output.amount_sat
            ),
            None,
        )
        if index is None:
            raise ValueError(f"the transaction does not pay {output.amount_sat} sat to {output.address}")
        taken.add(index)
        found.update(dict.fromkeys(output.payout_ids, index))
    return found
