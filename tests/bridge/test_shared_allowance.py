"""One allowance for STREAM pulls and payouts: the same ledger, the same atomic reservation, under real
concurrency; several bridge instances over one database; and crashes between the bridge's writes."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from sqlalchemy import select

from spsp_pull.bridge.amounts import DebitUnits, Sats
from spsp_pull.bridge.ledger import PayoutConflict
from spsp_pull.bridge.network import Network
from spsp_pull.bridge.settings import PAYOUT_LEASE
from spsp_pull.bridge.states import Trigger
from spsp_pull.domain.clock import ManualClock
from spsp_pull.domain.states import PayoutStatus, ReservationKind
from spsp_pull.store import models, pointers, reservations
from spsp_pull.store.database import Database
from tests.bridge import factories, harness
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind

ADDRESS = factories.address(Network.REGTEST, "p2wpkh", "shared")
LEASE = timedelta(minutes=5)


async def test_payouts_and_concurrent_stream_pulls_never_exceed_the_allowance(
    db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind
) -> None:
    bitcoind.fund(100_000_000)
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now, amount=20_000)
    rng = random.Random(7)
    async with harness.running(harness.settings(bitcoind), db, bridge_clock) as bridge:
        offers = [await harness.offer(bridge, pointer, ADDRESS, amount=DebitUnits(1_500)) for _ in range(10)]

        async def streamer() -> int:
            pulled = 0
            while True:
                grant = await reservations.reserve(
                    db, pointer.id, rng.randint(50, 700), kind=ReservationKind.STREAM, now=now, lease=LEASE
                )
                if grant is None:
                    return pulled
                await asyncio.sleep(0)
                sent = grant.amount if rng.random() < 0.7 else rng.randint(0, grant.amount)
                await reservations.settle(db, grant.reservation_id, sent, now=now)
                pulled += sent

        async def approver() -> int:
            approved = 0
            for offer in offers:
                try:
                    await bridge.approve(offer, by="owner")
                    approved += offer.debit
                except PayoutConflict:
                    pass
                await asyncio.sleep(0)
            return approved

        results = await asyncio.gather(approver(), *(streamer() for _ in range(8)))
        approved_debits, streamed = results[0], sum(results[1:])
        await bridge.run_batch()
        after = await harness.fresh(db, pointer)
        assert approved_debits + streamed == after.usage.pulled_total <= 20_000
        assert after.reserved_total == 0
        ledger = await pointers.pointer_pulls(db, pointer.id, limit=10_000)
        assert sum(p.amount for p in ledger if p.kind == "payout") == approved_debits
        assert sum(p.amount for p in ledger if p.kind == "stream") == streamed
        await harness.assert_reservations_closed(db)


async def test_two_instances_pay_each_payout_once(
    db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind
) -> None:
    bitcoind.fund(100_000_000, count=4)
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now)
    config = harness.settings(bitcoind)
    async with (
        harness.running(config, db, bridge_clock) as one,
        harness.running(config, db, bridge_clock) as two,
    ):
        made = []
        for index in range(8):
            bridge = one if index % 2 else two
            address = factories.address(Network.REGTEST, "p2wpkh", f"instance {index % 3}")
            made.append(
                await harness.offer(bridge, pointer, address, amount=Sats(10_000 + index), auto_approve=True)
            )
        await asyncio.gather(one.run_batch(), two.run_batch(), one.reconcile(), two.reconcile())
        await asyncio.gather(one.run_batch(), two.run_batch())
        final = [await harness.payout(db, p) for p in made]
        assert {p.status for p in final} == {"SENT"}
        scripts = {p.script_pubkey or "" for p in made}
        paid = {
            script: sum(value for _, value in harness.paid_outputs(bitcoind, script)) for script in scripts
        }
        expected: dict[str, int] = {}
        for p in made:
            expected[p.script_pubkey or ""] = expected.get(p.script_pubkey or "", 0) + p.transfer_msat // 1000
        assert paid == expected
        await harness.assert_reservations_closed(db)


async def test_a_reservation_taken_by_an_approval_that_died_is_released(
    db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now, amount=10_000)
    async with harness.running(harness.settings(bitcoind), db, bridge_clock) as bridge:
        orphan = await reservations.reserve(
            db, pointer.id, 4_000, kind=ReservationKind.PAYOUT, now=now, lease=PAYOUT_LEASE
        )
        assert orphan is not None
        await bridge.reconcile()  # within the grace period: an approval may be about to link it
        assert len(await harness.open_reservations(db)) == 1
        bridge_clock.advance(bridge.settings.orphan_grace + timedelta(seconds=1))
        assert await reservations.recover_expired(db, now=bridge_clock.now()) == []  # never for payouts
        await bridge.reconcile()
        assert await harness.open_reservations(db) == []
        assert await harness.available(db, pointer, bridge_clock.now()) == 10_000


async def test_a_status_written_before_its_reservation_closed_is_caught_up(
    db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind
) -> None:
    """A crash after SENT / FAILED was committed but before settle / release ran."""
    bitcoind.fund(10_000_000)
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now, amount=10_000)
    async with harness.running(harness.settings(bitcoind), db, bridge_clock) as bridge:
        sent = await harness.offer(bridge, pointer, ADDRESS, amount=DebitUnits(3_000), auto_approve=True)
        failed = await harness.offer(bridge, pointer, ADDRESS, amount=DebitUnits(2_000), auto_approve=True)
        async with db.write() as session:
            for payout_id, status in ((sent.id, PayoutStatus.SENT), (failed.id, PayoutStatus.FAILED)):
                row = (
                    await session.scalars(select(models.Payout).where(models.Payout.id == payout_id))
                ).one()
                row.status = status
        assert len(await harness.open_reservations(db)) == 2
        await bridge.reconcile()
        await harness.assert_reservations_closed(db)
        after = await harness.fresh(db, pointer)
        assert after.usage.pulled_total == 3_000
        assert await harness.available(db, pointer, now) == 7_000


async def test_queued_payouts_of_a_cancelled_pointer_are_cancelled(
    db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now, amount=10_000)
    async with harness.running(harness.settings(bitcoind), db, bridge_clock) as bridge:
        queued = await harness.offer(bridge, pointer, ADDRESS, amount=DebitUnits(3_000), auto_approve=True)
        await pointers.cancel_pointer(db, pointer.account_id, pointer.token, now)
        await bridge.reconcile()
        assert (await harness.payout(db, queued)).status == "CANCELLED"
        await harness.assert_reservations_closed(db)
        assert await bridge.run_batch() is None
        assert bitcoind.state.mempool == {}


async def test_a_stale_worker_cannot_move_a_payout_twice(
    db: Database, bridge_clock: ManualClock, bitcoind: FakeBitcoind
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now, amount=10_000)
    async with harness.running(harness.settings(bitcoind), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, ADDRESS, amount=DebitUnits(3_000), auto_approve=True)
        cancelled = await bridge.ledger.transition(offer.id, Trigger.CANCEL, now=now)
        assert cancelled is not None and cancelled.status == "CANCELLED"
        assert await bridge.ledger.transition(offer.id, Trigger.DISPATCH, now=now) is None
        assert await bridge.ledger.transition(offer.id, Trigger.CANCEL, now=now) is None
        await harness.assert_reservations_closed(db)
