"""One lock order for pointer and reservation rows: the pointer first, then its reservations in id order.

Settling (with the next reservation and the sender lease) and the recovery of expired reservations run hard
against each other on PostgreSQL, on separate connections. Taken in opposite orders (the settlement naming
its reservations newest first, as a caller may), they deadlock; in one order they only wait for each other.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

import pytest

from spsp_pull.domain.clock import ManualClock
from spsp_pull.domain.states import ReservationKind
from spsp_pull.store import pointers, reservations
from spsp_pull.store.database import Database
from spsp_pull.store.reservations import ReservationClosed
from tests.store.pointer_factory import make_pointer

ROUNDS = 40
PER_ROUND = 4  # expired reservations fought over in each round
RECOVERERS = 2
JITTER = timedelta(milliseconds=100)  # varies who gets to the rows first; not a synchronisation
LEASE = timedelta(seconds=60)


async def _expired_reservations(db: Database, pointer_id: int, now: datetime) -> list[int]:
    ids = []
    for amount in range(1, PER_ROUND + 1):
        grant = await reservations.reserve(
            db, pointer_id, 10 * amount, kind=ReservationKind.STREAM, now=now - 2 * LEASE, lease=LEASE
        )
        assert grant is not None
        ids.append(grant.reservation_id)
    return ids


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_settling_and_recovering_in_parallel_never_deadlock(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    record = await make_pointer(db, now - timedelta(days=1), amount=10**12)
    settled_by_pull = recovered = debited = 0
    for round_number in range(ROUNDS):
        ids = await _expired_reservations(db, record.id, now)
        shares = [(reservation_id, 5) for reservation_id in reversed(ids)]
        recoveries = [
            asyncio.create_task(reservations.recover_expired(db, now=now)) for _ in range(RECOVERERS)
        ]
        if round_number % 2:
            await asyncio.sleep(JITTER.total_seconds() * random.random())  # let the recoverers go first
        pull = asyncio.create_task(
            reservations.settle_and_reserve(
                db,
                shares,
                record.id,
                7,
                kind=ReservationKind.STREAM,
                now=now,
                lease=LEASE,
                sender=("pull", LEASE),
            )
        )
        await asyncio.wait([pull, *recoveries])
        # `result()` raises what the task raised: a deadlock error would show here.
        if not isinstance(pull.exception(), ReservationClosed):  # all or nothing: a recoverer came first
            settled, grant = pull.result()
            assert grant is not None
            settled_by_pull += len(settled)
            debited += sum(s.sent for s in settled)
            debited += (await reservations.settle(db, grant.reservation_id, 7, now=now)).sent
        for recovery in recoveries:
            recovered += len(recovery.result())
            debited += sum(s.sent for s in recovery.result())
        assert await reservations.open_reservations(db, record.id) == []
    assert settled_by_pull + recovered == ROUNDS * PER_ROUND
    assert settled_by_pull and recovered  # both sides won some rounds: they really raced
    after = await pointers.find_by_id(db, record.id)
    assert after is not None and after.reserved_total == 0
    pulls = await pointers.pointer_pulls(db, record.id, limit=100_000)
    assert after.usage.pulled_total == sum(p.amount for p in pulls) == debited
