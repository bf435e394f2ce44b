"""The reservation primitive under real concurrency: tasks in one process, and OS processes on PostgreSQL.

Every test runs on each backend and, for SQLite, on both drivers (`SPSP_SQLITE_DRIVER`): the inline one and
aiosqlite, where a pull's writes go through the ORM's connection instead of the driver's."""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from spsp_pull.domain.agreement import balance
from spsp_pull.domain.clock import ManualClock
from spsp_pull.domain.states import ReservationKind
from spsp_pull.store import pointers, reservations
from spsp_pull.store.audit import audit_ledger
from spsp_pull.store.database import Database
from tests.conftest import BACKENDS_AND_AIOSQLITE, DatabaseFactory
from tests.store.pointer_factory import make_pointer

pytestmark = pytest.mark.parametrize("backend", BACKENDS_AND_AIOSQLITE, indirect=True)
LEASE = timedelta(seconds=60)


async def ledger_total(db: Database, pointer_id: int) -> int:
    return sum(p.amount for p in await pointers.pointer_pulls(db, pointer_id, limit=100_000))


async def test_reserve_caps_at_available_and_settle_returns_the_rest(
    db: Database, clock: ManualClock
) -> None:
    now = clock.now()
    record = await make_pointer(db, now, amount=1000)
    grant = await reservations.reserve(db, record.id, 5000, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert grant is not None and grant.amount == 1000
    assert (
        await reservations.reserve(db, record.id, 1, kind=ReservationKind.STREAM, now=now, lease=LEASE)
        is None
    )
    settled = await reservations.settle(db, grant.reservation_id, 600, now=now)
    assert (settled.sent, settled.returned) == (600, 400)
    after = await pointers.find_by_id(db, record.id)
    assert after is not None
    assert balance(after.version, after.usage, now, None).available == 400
    assert after.usage.pulled_total == 600 and after.reserved_total == 0
    with pytest.raises(reservations.ReservationClosed):
        await reservations.release(db, grant.reservation_id, now=now)
    assert await ledger_total(db, record.id) == 600


async def test_release_gives_everything_back(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    record = await make_pointer(db, now, amount=1000)
    grant = await reservations.reserve(db, record.id, 700, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert grant is not None
    await reservations.release(db, grant.reservation_id, now=now)
    again = await reservations.reserve(db, record.id, 5000, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert again is not None and again.amount == 1000


async def test_expired_lease_is_debited_in_full(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    record = await make_pointer(db, now, amount=1000)
    grant = await reservations.reserve(db, record.id, 300, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert grant is not None
    assert await reservations.recover_expired(db, now=now + LEASE / 2) == []
    recovered = await reservations.recover_expired(db, now=now + LEASE + timedelta(seconds=1))
    assert [(r.reservation_id, r.sent) for r in recovered] == [(grant.reservation_id, 300)]
    after = await pointers.find_by_id(db, record.id)
    assert after is not None and after.usage.pulled_total == 300 and after.reserved_total == 0
    assert [p.kind for p in await pointers.pointer_pulls(db, record.id)] == ["recovered"]


async def test_reservation_in_flight_across_a_cycle_boundary(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    record = await make_pointer(db, now, amount=1000, cap=True, interval="P1D")
    grant = await reservations.reserve(db, record.id, 1000, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert grant is not None
    later = now + timedelta(days=1, seconds=1)
    await reservations.settle(db, grant.reservation_id, 400, now=later)
    after = await pointers.find_by_id(db, record.id)
    assert after is not None
    # The 600 returned belonged to cycle 1, which is over: cycle 2 offers its own full amount.
    assert balance(after.version, after.usage, later, None).available == 1000
    assert after.usage.pulled_total == 400


async def test_many_tasks_never_hold_more_than_the_allowance(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    allowance = 20_000
    record = await make_pointer(db, now, amount=allowance, cycles=1)
    rng = random.Random(7)
    outstanding = 0
    settled_total = 0
    peak = 0

    async def worker() -> None:
        nonlocal outstanding, settled_total, peak
        for _ in range(200):
            grant = await reservations.reserve(
                db, record.id, rng.randint(1, 900), kind=ReservationKind.STREAM, now=now, lease=LEASE
            )
            if grant is None:
                return
            outstanding += grant.amount
            peak = max(peak, outstanding + settled_total)
            assert outstanding + settled_total <= allowance
            await asyncio.sleep(0)
            roll = rng.random()
            sent = grant.amount if roll < 0.7 else (rng.randint(0, grant.amount) if roll < 0.9 else 0)
            await reservations.settle(db, grant.reservation_id, sent, now=now)
            outstanding -= grant.amount
            settled_total += sent
        raise AssertionError("a worker did not run out of allowance in 200 rounds")

    await asyncio.gather(*(worker() for _ in range(20)))
    after = await pointers.find_by_id(db, record.id)
    assert after is not None
    assert settled_total == allowance == after.usage.pulled_total == await ledger_total(db, record.id)
    assert after.reserved_total == 0
    assert peak <= allowance
    assert (await audit_ledger(db, now=now)).mismatches == ()


async def test_many_pulls_settling_and_reserving_at_once_never_hold_more_than_the_allowance(
    db: Database, clock: ManualClock
) -> None:
    """A pull's own writes (`settle_and_reserve`, then `settle_all`), each a raw write, from many tasks at
    once: each settles what it sent of its last chunk and holds the next in one transaction."""
    now = clock.now()
    allowance = 12_000
    record = await make_pointer(db, now, amount=allowance, cycles=1)
    rng = random.Random(11)

    async def pull() -> int:
        sent_total = 0
        settle: list[tuple[int, int]] = []
        for _ in range(200):
            _, grant = await reservations.settle_and_reserve(
                db, settle, record.id, rng.randint(1, 700), kind=ReservationKind.STREAM, now=now, lease=LEASE
            )
            sent_total += sum(sent for _, sent in settle)
            if grant is None:
                return sent_total
            await asyncio.sleep(0)  # let the other pulls in between this one's writes
            sent = grant.amount if rng.random() < 0.8 else rng.randint(0, grant.amount)
            if rng.random() < 0.1:  # the pull ends here
                await reservations.settle_all(db, [(grant.reservation_id, sent)], now=now)
                return sent_total + sent
            settle = [(grant.reservation_id, sent)]
        raise AssertionError("a pull neither ended nor ran out of allowance in 200 rounds")

    totals: list[int] = []
    while sum(totals) < allowance:  # pulls that end early leave allowance for the next round of them
        totals += await asyncio.gather(*(pull() for _ in range(12)))
    after = await pointers.find_by_id(db, record.id)
    assert after is not None
    assert sum(totals) == allowance == after.usage.pulled_total == await ledger_total(db, record.id)
    assert after.reserved_total == 0
    assert await reservations.open_reservations(db, record.id) == []
    assert (await audit_ledger(db, now=now)).mismatches == ()


HAMMER = Path(__file__).with_name("hammer.py")


async def test_two_processes_never_hold_more_than_the_allowance(
    db_factory: DatabaseFactory, clock: ManualClock
) -> None:
    url, schema = await db_factory.url_and_schema()
    db = Database(url, schema=schema, sqlite_driver=db_factory.sqlite_driver)
    await db.migrate()
    try:
        now = clock.now()
        allowance = 30_000
        record = await make_pointer(db, now, amount=allowance, cycles=1)
        procs = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                str(HAMMER),
                url,
                schema or "",
                str(record.id),
                now.isoformat(),
                str(seed),
                db_factory.sqlite_driver,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            for seed in (1, 2)
        ]
        for proc in procs:
            assert proc.stdout is not None
            ready = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
            assert ready == b"ready\n", ready
        start_together = (proc.communicate(b"go\n") for proc in procs)
        outputs = await asyncio.wait_for(asyncio.gather(*start_together), timeout=120)
        totals = []
        for proc, (out, err) in zip(procs, outputs, strict=True):
            assert proc.returncode == 0, err.decode()
            totals.append(int(out.decode().split()[-1]))
        after = await pointers.find_by_id(db, record.id)
        assert after is not None
        assert all(t > 0 for t in totals), f"both processes must have pulled: {totals}"
        assert sum(totals) == allowance == after.usage.pulled_total == await ledger_total(db, record.id)
        assert after.reserved_total == 0
        assert (await audit_ledger(db, now=now)).mismatches == ()
    finally:
        await db.close()
        if schema is not None:
            from tests.conftest import _drop_schema

            await _drop_schema(schema)


async def test_sender_lease_is_exclusive_and_runs_out(db: Database, clock: ManualClock) -> None:
    from spsp_pull.store import sender_lease

    now = clock.now()
    record = await make_pointer(db, now)
    ttl = timedelta(seconds=10)
    assert await sender_lease.acquire(db, record.id, "a", now=now, ttl=ttl)
    assert not await sender_lease.acquire(db, record.id, "b", now=now, ttl=ttl)
    assert await sender_lease.acquire(db, record.id, "a", now=now + timedelta(seconds=5), ttl=ttl)
    assert not await sender_lease.acquire(db, record.id, "b", now=now + timedelta(seconds=14), ttl=ttl)
    assert await sender_lease.acquire(db, record.id, "b", now=now + timedelta(seconds=15), ttl=ttl)
    await sender_lease.release(db, record.id, "a")  # not the holder: no effect
    assert not await sender_lease.acquire(db, record.id, "a", now=now + timedelta(seconds=16), ttl=ttl)
    await sender_lease.release(db, record.id, "b")
    assert await sender_lease.acquire(db, record.id, "a", now=now + timedelta(seconds=16), ttl=ttl)


async def test_settle_and_reserve_is_one_transaction_all_or_nothing(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    record = await make_pointer(db, now, amount=1000)
    first = await reservations.reserve(db, record.id, 300, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    second = await reservations.reserve(db, record.id, 300, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert first is not None and second is not None
    await reservations.release(db, second.reservation_id, now=now)
    with pytest.raises(reservations.ReservationClosed):
        await reservations.settle_and_reserve(
            db, [(first.reservation_id, 300), (second.reservation_id, 300)], record.id, 500,
            kind=ReservationKind.STREAM, now=now, lease=LEASE,
        )  # fmt: skip
    unchanged = await pointers.find_by_id(db, record.id)
    assert unchanged is not None
    assert unchanged.reserved_total == 300 and unchanged.usage.pulled_total == 0
    assert await reservations.open_reservations(db, record.id) == [first.reservation_id]

    settled, grant = await reservations.settle_and_reserve(
        db, [(first.reservation_id, 250)], record.id, 5000, kind=ReservationKind.STREAM, now=now, lease=LEASE
    )
    assert [(s.sent, s.returned) for s in settled] == [(250, 50)]
    assert grant is not None and grant.amount == 750  # what the settlement gave back is available again
    after = await pointers.find_by_id(db, record.id)
    assert after is not None
    assert after.usage.pulled_total == 250 and after.reserved_total == 750
    assert await ledger_total(db, record.id) == 250


async def test_settle_all_closes_the_pull_and_releases_its_sender_lease(
    db: Database, clock: ManualClock
) -> None:
    from spsp_pull.store import sender_lease

    now = clock.now()
    record = await make_pointer(db, now, amount=1000)
    ttl = timedelta(seconds=10)
    assert await sender_lease.acquire(db, record.id, "puller", now=now, ttl=ttl)
    grants = [
        await reservations.reserve(db, record.id, 400, kind=ReservationKind.STREAM, now=now, lease=LEASE)
        for _ in "ab"
    ]
    shares = [(g.reservation_id, 400 if i == 0 else 100) for i, g in enumerate(grants) if g is not None]
    settled = await reservations.settle_all(db, shares, now=now, release_sender=(record.id, "puller"))
    assert [s.sent for s in settled] == [400, 100]
    assert await sender_lease.acquire(db, record.id, "another", now=now, ttl=ttl)
    after = await pointers.find_by_id(db, record.id)
    assert after is not None
    assert after.usage.pulled_total == 500 and after.reserved_total == 0
    assert balance(after.version, after.usage, now, None).available == 500


async def test_settle_and_reserve_takes_the_sender_lease_or_changes_nothing(
    db: Database, clock: ManualClock
) -> None:
    from spsp_pull.store import sender_lease

    now = clock.now()
    record = await make_pointer(db, now, amount=1000)
    ttl = timedelta(seconds=10)
    _, grant = await reservations.settle_and_reserve(
        db, [], record.id, 100, kind=ReservationKind.STREAM, now=now, lease=LEASE, sender=("first", ttl)
    )
    assert grant is not None and grant.amount == 100
    assert not await sender_lease.acquire(db, record.id, "second", now=now, ttl=ttl)
    with pytest.raises(reservations.SenderBusy):
        await reservations.settle_and_reserve(
            db, [(grant.reservation_id, 100)], record.id, 100,
            kind=ReservationKind.STREAM, now=now, lease=LEASE, sender=("second", ttl),
        )  # fmt: skip
    unchanged = await pointers.find_by_id(db, record.id)
    assert unchanged is not None and unchanged.reserved_total == 100 and unchanged.usage.pulled_total == 0
    later = now + timedelta(seconds=8)
    settled, again = await reservations.settle_and_reserve(
        db,
        [(grant.reservation_id, 100)],
        record.id,
        100,
        kind=ReservationKind.STREAM,
        now=later,
        lease=LEASE,
        sender=("first", ttl),
    )
    assert [s.sent for s in settled] == [100] and again is not None
    assert not await sender_lease.acquire(db, record.id, "second", now=now + timedelta(seconds=12), ttl=ttl)
    assert await sender_lease.acquire(db, record.id, "second", now=later + ttl, ttl=ttl)
