"""Shaping a window's payouts into outputs: summed per script, found again in the signed transaction."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from embit.script import Script, address_to_scriptpubkey
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from spsp_pull.bridge.batching import group_outputs, output_indexes
from spsp_pull.bridge.network import Network
from spsp_pull.store.payouts import PayoutRecord
from tests.bridge import factories

NOW = datetime(2025, 3, 1, tzinfo=UTC)
ALICE = factories.address(Network.REGTEST, "p2wpkh", "alice")
BOB = factories.address(Network.REGTEST, "p2tr", "bob")


def payout(payout_id: int, address: str, sat: int) -> PayoutRecord:
    script = address_to_scriptpubkey(address).data.hex()
    return PayoutRecord(
        id=payout_id,
        public_id=str(payout_id),
        pointer_id=1,
        account_id=1,
        created_by="owner",
        rail="onchain",
        destination=address,
        address=address,
        script_pubkey=script,
        invoice=None,
        payment_hash=None,
        amount_side="transfer",
        transfer_msat=sat * 1000,
        fee_msat=0,
        debit=1,
        asset_code="USD",
        asset_scale=2,
        rate="50000",
        status="QUEUED",
        reservation_id=1,
        batch_id=None,
        vout=None,
        attempts=0,
        claimed_until=None,
        preimage=None,
        routing_fee_msat=None,
        failure_reason=None,
        approved_by=None,
        notification_url=None,
        comment=None,
        metadata=None,
        created_at=NOW,
        expires_at=NOW,
        approved_at=NOW,
        sent_at=None,
        confirmed_at=None,
    )


def test_outputs_are_summed_per_script_in_first_seen_order() -> None:
    outputs = group_outputs([payout(1, ALICE, 1_000), payout(2, BOB, 500), payout(3, ALICE, 2_000)])
    assert [(o.address, o.amount_sat, o.payout_ids) for o in outputs] == [
        (ALICE, 3_000, (1, 3)),
        (BOB, 500, (2,)),
    ]
    assert outputs[0].pay_to.amount_sat == 3_000


def test_fractions_of_a_satoshi_and_missing_scripts_are_refused() -> None:
    with pytest.raises(ValueError, match="satoshis"):
        group_outputs([replace(payout(1, ALICE, 1), transfer_msat=1_500)])
    with pytest.raises(ValueError, match="script"):
        group_outputs([replace(payout(1, ALICE, 1), script_pubkey=None)])


def test_each_payout_finds_its_output_around_the_change() -> None:
    outputs = group_outputs([payout(1, ALICE, 1_000), payout(2, BOB, 500), payout(3, ALICE, 2_000)])
    change = TransactionOutput(7_777, Script(bytes.fromhex("0014" + "11" * 20)))
    paid = [TransactionOutput(o.amount_sat, Script(bytes.fromhex(o.script_pubkey))) for o in outputs]
    tx = Transaction(vin=[TransactionInput(bytes(32), 0)], vout=[change, paid[1], paid[0]])
    assert output_indexes(tx.serialize().hex(), outputs) == {1: 2, 3: 2, 2: 1}
    short = Transaction(vin=[TransactionInput(bytes(32), 0)], vout=[change, paid[0]])
    with pytest.raises(ValueError, match="does not pay"):
        output_indexes(short.serialize().hex(), outputs)
