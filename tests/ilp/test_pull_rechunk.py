"""A pull re-chunks: a grant held for half its lease is settled, in the middle of the pull, before the pull
reserves afresh, so recovery never finds it open and debits it in full."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from spsp_pull.store import pointers
from spsp_pull.store.database import Database
from stream.frames import StreamMaxMoney
from tests.ilp.hostile.payee import PAYEE_STREAM
from tests.ilp.test_in_flight_settlement import assert_ledger_sound, served


async def test_a_grant_held_half_its_lease_is_settled_before_the_pull_goes_on(db: Database) -> None:
    lease = timedelta(seconds=2)
    async with served(db, max_packet_amount=250_000, reservation_lease=lease) as s:
        record = await s.pointer(1_000_000)
        async with await s.payee(record) as payee:
            await payee.open_stream(receive_max=500_000)
            first = await payee.money_worth(500_000)
            await asyncio.sleep(0.75 * lease.total_seconds())  # the scenario: hold past half the lease
            for incoming in first:
                await payee.fulfill(incoming)
            await s.node.counter.paid_at_least(500_000)
            # The stream is still open: only a re-chunk settles the grant now. The ledger is the witness.
            for _ in range(500):  # 10 s
                if await pointers.pointer_pulls(db, record.id):
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the grant held past half its lease was not settled")
            midway = await pointers.find_by_id(db, record.id)
            assert midway is not None and midway.usage.pulled_total == 500_000

            await payee.send_frames(StreamMaxMoney(PAYEE_STREAM, 1_000_000, 500_000))
            assert await payee.receive_until_closed() == 500_000
            after = await s.settled(record)
        assert s.paid == after.usage.pulled_total == 1_000_000 == await s.ledger_total(record)
        assert [p.amount for p in await pointers.pointer_pulls(db, record.id)] == [500_000, 500_000]
    await assert_ledger_sound(db)
