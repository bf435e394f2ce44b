"""On-chain payouts end to end: offers, approval, one batch per window, faults and restarts, against the
fake bitcoind over HTTP with the real adapter and a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from embit.transaction import Transaction

from spsp_pull.bridge.amounts import DebitUnits, Msats, Sats
from spsp_pull.bridge.ledger import PayoutConflict
from spsp_pull.bridge.network import Network
from spsp_pull.domain.clock import ManualClock
from spsp_pull.store import payouts as store
from spsp_pull.store.database import Database
from tests.bridge import factories, harness
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind

P2SH = factories.address(Network.REGTEST, "p2sh-p2wpkh", "refund")
P2WPKH = factories.address(Network.REGTEST, "p2wpkh", "contractor")
P2TR = factories.address(Network.REGTEST, "p2tr", "other")


@pytest.fixture
async def funded(bitcoind: FakeBitcoind) -> FakeBitcoind:
    bitcoind.fund(10_000_000, count=3)
    return bitcoind


async def test_refund_an_exact_amount_of_btc(
    db: Database, bridge_clock: ManualClock, funded: FakeBitcoind
) -> None:
    """Seed 002/003 'Refund Exact Amount of BTC': the transfer is fixed, the debit follows the rate."""
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    async with harness.running(harness.settings(funded), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, P2SH, amount=Msats(100_000_000), comment="Refund")
        assert offer.status == "NEW" and offer.rate == "50000"
        assert offer.transfer_msat == 100_000_000  # 0.001 BTC
        assert offer.fee_msat == 500_000
        assert offer.debit == 5_025  # (100 000 + 500) sat at 20 sat per cent, in cents
        assert offer.expires_at == now + bridge.settings.offer_ttl
        assert await harness.available(db, pointer, now) == 100_000  # an offer reserves nothing

        queued = await bridge.approve(offer, by="owner")
        assert queued.status == "QUEUED" and queued.reservation_id is not None
        assert await harness.available(db, pointer, now) == 100_000 - 5_025

        batch = await bridge.run_batch()
        assert batch is not None
        sent = await harness.payout(db, offer)
        assert sent.status == "SENT" and sent.txid is not None and sent.confirmations == 0
        assert harness.paid_outputs(funded, offer.script_pubkey or "") == [(sent.txid, 100_000)]
        assert await harness.available(db, pointer, now) == 100_000 - 5_025
        await harness.assert_reservations_closed(db)

        funded.mine()
        await bridge.reconcile()
        confirmed = await harness.payout(db, offer)
        assert confirmed.status == "CONFIRMED" and confirmed.confirmations == 1
        kinds = [e.kind for e in await store.payout_events(db, offer.id)]
        assert kinds == [
            "created",
            "approve",
            "batched",
            "dispatched",
            "sent",
            "reservation-settled",
            "confirmed",
        ]


async def test_send_a_specific_amount_of_fiat(
    db: Database, bridge_clock: ManualClock, funded: FakeBitcoind
) -> None:
    """Seed 002/003 'Send a Specific Amount of Fiat Currency': 100 USD buys what it buys, fee included."""
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    async with harness.running(harness.settings(funded), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, P2WPKH, amount=DebitUnits(10_000), auto_approve=True)
        assert offer.status == "QUEUED"
        assert offer.debit == 10_000
        assert offer.transfer_msat == 199_500_000  # 200 000 sat for 100 USD, less the 500 sat fee
        await bridge.run_batch()
        assert harness.paid_outputs(funded, offer.script_pubkey or "")[0][1] == 199_500
        assert await harness.available(db, pointer, now) == 90_000
        await harness.assert_reservations_closed(db)


async def test_two_payouts_to_one_address_leave_in_one_output(
    db: Database, bridge_clock: ManualClock, funded: FakeBitcoind
) -> None:
    """Seed 003 batching: approved within one window, same address -> one transaction, one summed output
    (the second written in upper case: the same script)."""
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    async with harness.running(harness.settings(funded), db, bridge_clock) as bridge:
        one = await harness.offer(bridge, pointer, P2WPKH, amount=Sats(100_000), auto_approve=True)
        two = await harness.offer(bridge, pointer, P2WPKH.upper(), amount=Sats(200_000), auto_approve=True)
        three = await harness.offer(bridge, pointer, P2TR, amount=Sats(50_000), auto_approve=True)
        await bridge.run_batch()
        sent = [await harness.payout(db, p) for p in (one, two, three)]
        assert {p.status for p in sent} == {"SENT"}
        assert len({p.txid for p in sent}) == 1
        assert sent[0].vout == sent[1].vout != sent[2].vout
        tx = Transaction.from_string(funded.state.mempool[sent[0].txid or ""])
        assert tx.vout[sent[0].vout or 0].value == 300_000
        assert harness.paid_outputs(funded, one.script_pubkey or "") == [(sent[0].txid, 300_000)]
        assert len(funded.state.mempool) == 1
        await harness.assert_reservations_closed(db)


async def test_expired_offer(db: Database, bridge_clock: ManualClock, funded: FakeBitcoind) -> None:
    """Approval after expirationTime is an error and changes nothing; the sweeper marks it EXPIRED."""
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    async with harness.running(harness.settings(funded), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, P2SH, amount=Sats(100_000))
        bridge_clock.advance(bridge.settings.offer_ttl)
        with pytest.raises(PayoutConflict) as late:
            await bridge.approve(offer, by="owner")
        assert late.value.code == "offer-expired"
        assert (await harness.payout(db, offer)).status == "NEW"
        assert await harness.open_reservations(db) == []
        assert await bridge.expire_offers() == 1
        assert (await harness.payout(db, offer)).status == "EXPIRED"
        with pytest.raises(PayoutConflict) as again:
            await bridge.approve(offer, by="owner")
        assert again.value.code == "invalid-state"
        assert await bridge.run_batch() is None
        assert funded.state.mempool == {}


async def test_limits(db: Database, bridge_clock: ManualClock, funded: FakeBitcoind) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now, amount=10_000)
    async with harness.running(harness.settings(funded), db, bridge_clock) as bridge:
        await harness.offer(bridge, pointer, P2SH, amount=DebitUnits(2_500), auto_approve=True)
        limits = await bridge.limits(await harness.fresh(db, pointer), None)
        assert limits["currency"] == "USD"
        assert (limits["used"], limits["available"]) == ("2500", "7500")
        assert limits["minPayoutAmount"] == "40"  # (294 + 500) sat = 39.7 cents, rounded up
        in_btc = await bridge.limits(await harness.fresh(db, pointer), "btc")
        assert (in_btc["currency"], in_btc["available"], in_btc["used"]) == (
            "BTC",
            "0.00150000",
            "0.00050000",
        )
        assert (await bridge.limits(await harness.fresh(db, pointer), "SAT"))["minPayoutAmount"] == "800"


async def test_an_overdraft_is_refused_at_offer_and_at_approval(
    db: Database, bridge_clock: ManualClock, funded: FakeBitcoind
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now, amount=10_000)
    async with harness.running(harness.settings(funded), db, bridge_clock) as bridge:
        with pytest.raises(PayoutConflict) as early:
            await harness.offer(bridge, pointer, P2SH, amount=DebitUnits(10_001))
        assert early.value.code == "overdraft"
        first = await harness.offer(bridge, pointer, P2SH, amount=DebitUnits(6_000))
        second = await harness.offer(bridge, pointer, P2WPKH, amount=DebitUnits(6_000))
        await bridge.approve(first, by="owner")
        with pytest.raises(PayoutConflict) as late:
            await bridge.approve(second, by="owner")
        assert late.value.code == "overdraft"
        assert (await harness.payout(db, second)).status == "NEW"
        assert await harness.available(db, pointer, now) == 4_000


async def test_cancel_before_dispatch_releases_and_after_batching_is_refused(
    db: Database, bridge_clock: ManualClock, funded: FakeBitcoind
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    async with harness.running(harness.settings(funded), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, P2SH, amount=Sats(100_000), auto_approve=True)
        cancelled = await bridge.cancel(offer, by="owner")
        assert cancelled.status == "CANCELLED"
        assert await harness.available(db, pointer, now) == 100_000
        other = await harness.offer(bridge, pointer, P2SH, amount=Sats(100_000), auto_approve=True)
        assert bridge.batcher is not None
        await bridge.batcher.prepare()
        with pytest.raises(PayoutConflict):
            await bridge.cancel(await harness.payout(db, other), by="owner")
        await bridge.reconcile()
        assert (await harness.payout(db, other)).status == "SENT"
        await harness.assert_reservations_closed(db)


async def test_timeout_after_broadcast_is_reconciled_without_paying_twice(
    db: Database, bridge_clock: ManualClock, funded: FakeBitcoind
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    async with harness.running(harness.settings(funded), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, P2WPKH, amount=Sats(150_000), auto_approve=True)
        funded.faults.hang_after_broadcast = True
        await bridge.run_batch()
        hung = await harness.payout(db, offer)
        assert hung.status == "IN_FLIGHT" and hung.txid in funded.state.mempool
        assert len(await harness.open_reservations(db)) == 1
        assert "broadcast-unknown" in [e.kind for e in await store.payout_events(db, offer.id)]

        funded.faults.hang_after_broadcast = False
        await bridge.run_batch()  # a new window builds nothing for an in-flight payout
        await bridge.reconcile()
        sent = await harness.payout(db, offer)
        assert sent.status == "SENT" and sent.txid == hung.txid
        assert funded.state.broadcasts == [hung.txid, hung.txid]  # the same transaction, twice
        assert harness.paid_outputs(funded, offer.script_pubkey or "") == [(hung.txid, 150_000)]
        await harness.assert_reservations_closed(db)


async def test_restart_between_recording_and_broadcast_broadcasts_the_recorded_transaction(
    db: Database, bridge_clock: ManualClock, funded: FakeBitcoind
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    config = harness.settings(funded)
    async with harness.running(config, db, bridge_clock) as first:
        offer = await harness.offer(first, pointer, P2SH, amount=Sats(120_000), auto_approve=True)
        assert first.batcher is not None
        batch_id = await first.batcher.prepare()  # recorded, then the process "dies"
        assert batch_id is not None
    recorded = await harness.payout(db, offer)
    assert recorded.status == "IN_FLIGHT" and funded.state.mempool == {}
    batch = await store.find_batch(db, batch_id)
    assert batch is not None and batch.state == "signed"

    async with harness.running(config, db, bridge_clock) as second:  # reconciles on start
        sent = await harness.payout(db, offer)
        assert sent.status == "SENT" and sent.txid == batch.txid
        assert await second.run_batch() is None
    assert funded.state.broadcasts == [batch.txid]
    assert harness.paid_outputs(funded, offer.script_pubkey or "") == [(batch.txid, 120_000)]
    await harness.assert_reservations_closed(db)


async def test_a_rejected_broadcast_requeues_then_fails_after_the_last_attempt(
    db: Database, bridge_clock: ManualClock, funded: FakeBitcoind
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    async with harness.running(harness.settings(funded, max_attempts=2), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, P2SH, amount=Sats(100_000), auto_approve=True)
        funded.faults.reject_broadcast = (-26, "min relay fee not met")
        await bridge.run_batch()
        requeued = await harness.payout(db, offer)
        assert requeued.status == "QUEUED" and requeued.attempts == 1 and requeued.txid is None
        assert funded.state.wallets["payouts"].locked == set()  # inputs given back
        await bridge.run_batch()
        failed = await harness.payout(db, offer)
        assert failed.status == "FAILED" and "min relay fee" in (failed.failure_reason or "")
        assert funded.state.mempool == {}
        assert await harness.available(db, pointer, now) == 100_000
        await harness.assert_reservations_closed(db)


async def test_what_the_wallet_cannot_fund_waits_for_the_next_window(
    db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind
) -> None:
    bitcoind.fund(300_000)
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    async with harness.running(harness.settings(bitcoind), db, bridge_clock) as bridge:
        small = await harness.offer(bridge, pointer, P2SH, amount=Sats(100_000), auto_approve=True)
        large = await harness.offer(bridge, pointer, P2TR, amount=Sats(250_000), auto_approve=True)
        await bridge.run_batch()
        assert (await harness.payout(db, small)).status == "SENT"
        assert (await harness.payout(db, large)).status == "QUEUED"
        assert await bridge.run_batch() is None  # still nothing to fund it with
        bitcoind.fund(1_000_000)
        await bridge.run_batch()
        assert (await harness.payout(db, large)).status == "SENT"
        await harness.assert_reservations_closed(db)
        assert timedelta(0) < bridge.settings.batch_claim
