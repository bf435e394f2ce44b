"""How reservations end: what the ledger records, what the outbox announces, and which ones recovery takes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from spsp_pull.domain.agreement import Changes, balance
from spsp_pull.domain.states import ReservationKind
from spsp_pull.store import models, pointers, reservations
from spsp_pull.store.accounts import ensure_admin
from spsp_pull.store.database import Database
from spsp_pull.store.pointers import PointerNotFound
from spsp_pull.store.records import PointerRecord
from spsp_pull.store.reservations import ReservationClosed, SenderBusy
from tests.conftest import BACKENDS_AND_AIOSQLITE
from tests.store.pointer_factory import make_pointer, terms

pytestmark = pytest.mark.parametrize("backend", BACKENDS_AND_AIOSQLITE, indirect=True)
LEASE = timedelta(seconds=60)
NOW = datetime(2024, 3, 1, tzinfo=UTC)
HOOK = "https://example.com/pulls"


def announce(record: PointerRecord, now: datetime) -> dict[str, object]:
    return {"pointer": record.token, "pulled": str(record.usage.pulled_total), "at": now.isoformat()}


async def _pointer_with_webhook(db: Database, *, amount: int = 1000) -> PointerRecord:
    admin = await ensure_admin(db, "test-admin-key", NOW)
    spec = pointers.NewPointer(account_id=admin.id, terms=terms(NOW, amount=amount), webhook=HOOK)
    return await pointers.create_pointer(db, spec, NOW)


async def _reserve(
    db: Database,
    pointer_id: int,
    want: int,
    *,
    kind: ReservationKind = ReservationKind.STREAM,
    lease: timedelta = LEASE,
) -> int:
    grant = await reservations.reserve(db, pointer_id, want, kind=kind, now=NOW, lease=lease)
    assert grant is not None and grant.amount == want
    return grant.reservation_id


async def _outbox(db: Database) -> list[models.WebhookMessage]:
    async with db.read() as session:
        return list(await session.scalars(select(models.WebhookMessage).order_by(models.WebhookMessage.id)))


async def _reservation(db: Database, reservation_id: int) -> tuple[str, int]:
    async with db.read() as session:
        row = await session.get_one(models.Reservation, reservation_id)
        return row.state, row.settled


async def test_a_settlement_with_notice_queues_one_message_with_the_balances_after_it(db: Database) -> None:
    record = await _pointer_with_webhook(db)
    quiet = await _reserve(db, record.id, 100)
    announced = await _reserve(db, record.id, 300)
    await reservations.settle(db, quiet, 100, now=NOW)
    assert await _outbox(db) == []  # no notice asked for, none queued

    later = NOW + timedelta(minutes=1)
    await reservations.settle(db, announced, 200, now=later, notify=announce)
    [message] = await _outbox(db)
    assert (message.url, message.event, message.state, message.created_at) == (
        HOOK,
        "pull.completed",
        "pending",
        later,
    )
    assert (message.account_id, message.pointer_id) == (record.account_id, record.id)
    assert json.loads(message.body) == {"pointer": record.token, "pulled": "300", "at": later.isoformat()}


async def test_a_pointer_without_webhook_announces_nothing(db: Database) -> None:
    record = await make_pointer(db, NOW, amount=1000)
    reservation = await _reserve(db, record.id, 100)
    await reservations.settle(db, reservation, 100, now=NOW, notify=announce)
    assert await _outbox(db) == []


async def test_the_end_of_a_pull_settles_every_share_and_announces_once_after_all_of_them(
    db: Database,
) -> None:
    record = await _pointer_with_webhook(db)
    first = await _reserve(db, record.id, 300)
    second = await _reserve(db, record.id, 200)
    third = await _reserve(db, record.id, 100)
    settled = await reservations.settle_all(
        db, [(first, 300), (second, 50), (third, 10)], now=NOW, notify=announce
    )
    assert [(s.reservation_id, s.sent, s.returned) for s in settled] == [
        (first, 300, 0),
        (second, 50, 150),
        (third, 10, 90),
    ]
    assert [await _reservation(db, r) for r in (first, second, third)] == [
        ("settled", 300),
        ("settled", 50),
        ("settled", 10),
    ]
    [message] = await _outbox(db)
    assert json.loads(message.body)["pulled"] == "360"


async def test_settling_and_reserving_records_the_settlement_and_grants_the_last_unit(db: Database) -> None:
    record = await make_pointer(db, NOW, amount=1000, cycles=1)
    used = await _reserve(db, record.id, 999)
    settled, grant = await reservations.settle_and_reserve(
        db, [(used, 999)], record.id, 1, kind=ReservationKind.STREAM, now=NOW, lease=LEASE
    )
    assert [(s.reservation_id, s.sent, s.returned) for s in settled] == [(used, 999, 0)]
    assert await _reservation(db, used) == ("settled", 999)
    assert grant is not None and grant.amount == 1
    _, nothing = await reservations.settle_and_reserve(
        db, [], record.id, 1, kind=ReservationKind.STREAM, now=NOW, lease=LEASE
    )
    assert nothing is None


@pytest.mark.parametrize("sent", [-1, 301])
async def test_a_settlement_outside_the_reservation_is_refused_and_changes_nothing(
    db: Database, sent: int
) -> None:
    record = await make_pointer(db, NOW, amount=1000)
    reservation = await _reserve(db, record.id, 300)
    with pytest.raises(ValueError, match=f"settled {sent} outside the reservation of 300"):
        await reservations.settle(db, reservation, sent, now=NOW)
    assert await _reservation(db, reservation) == ("open", 0)
    after = await pointers.find_by_id(db, record.id)
    assert after is not None and (after.usage.pulled_total, after.reserved_total) == (0, 300)


async def test_what_a_reservation_from_before_a_revision_returns_stays_counted(db: Database) -> None:
    record = await make_pointer(db, NOW, amount=1000, interval="P1D", cycles=10, cap=False)
    before = await _reserve(db, record.id, 600)
    day_two = NOW + timedelta(days=1, hours=1)
    await pointers.revise_pointer(db, record.account_id, record.token, Changes(amount=2000), day_two)
    # Cycle 1 left 400 unreserved (the carry) and cycle 2 grants 2,000.
    await reservations.settle(db, before, 100, now=day_two)
    after = await pointers.find_by_id(db, record.id)
    assert after is not None and after.usage.pulled_total == 100
    # The 500 returned belonged to the old anchor's count: nothing comes back to the new one.
    assert balance(after.version, after.usage, day_two, None).available == 400 + 2000


async def test_open_reservations_are_those_of_the_pointer(db: Database) -> None:
    one = await make_pointer(db, NOW, amount=1000)
    other = await make_pointer(db, NOW, amount=1000)
    mine = await _reserve(db, one.id, 10)
    await _reserve(db, other.id, 20)
    done = await _reserve(db, one.id, 30)
    await reservations.release(db, done, now=NOW)
    assert await reservations.open_reservations(db, one.id) == [mine]


async def test_recovery_takes_open_stream_reservations_whose_lease_ran_out_oldest_first(db: Database) -> None:
    record = await make_pointer(db, NOW, amount=1000)
    closed = await _reserve(db, record.id, 10, lease=timedelta(seconds=30))
    await reservations.settle(db, closed, 10, now=NOW)
    payout = await _reserve(db, record.id, 20, kind=ReservationKind.PAYOUT, lease=timedelta(seconds=30))
    older = await _reserve(db, record.id, 30, lease=timedelta(seconds=120))
    newer = await _reserve(db, record.id, 40, lease=timedelta(seconds=60))

    later = NOW + timedelta(seconds=200)
    assert [r.reservation_id for r in await reservations.recover_expired(db, now=later, limit=1)] == [older]
    assert [r.reservation_id for r in await reservations.recover_expired(db, now=later, limit=1)] == [newer]
    assert await reservations.recover_expired(db, now=later) == []
    # The payout's outcome is the payout reconciler's to learn: recovery never debits it.
    assert await reservations.open_reservations(db, record.id) == [payout]


async def test_a_lease_runs_out_after_its_last_moment(db: Database) -> None:
    record = await make_pointer(db, NOW, amount=1000)
    reservation = await _reserve(db, record.id, 10)
    assert await reservations.recover_expired(db, now=NOW + LEASE) == []
    recovered = await reservations.recover_expired(db, now=NOW + LEASE + timedelta(microseconds=1))
    assert [(r.reservation_id, r.sent) for r in recovered] == [(reservation, 10)]
    assert await _reservation(db, reservation) == ("recovered", 10)


async def test_a_reservation_holds_what_is_asked_down_to_one_unit_and_never_below_its_minimum(
    db: Database,
) -> None:
    record = await make_pointer(db, NOW, amount=1000, cycles=1)
    one = await reservations.reserve(db, record.id, 1, kind=ReservationKind.STREAM, now=NOW, lease=LEASE)
    assert one is not None
    assert (one.pointer_id, one.amount, one.cycle, one.lease_until) == (record.id, 1, 1, NOW + LEASE)
    exact = await reservations.reserve(
        db, record.id, 999, kind=ReservationKind.PAYOUT, now=NOW, lease=LEASE, minimum=999
    )
    assert exact is not None and exact.amount == 999
    assert (
        await reservations.reserve(
            db, record.id, 5, kind=ReservationKind.STREAM, now=NOW, lease=LEASE, minimum=0
        )
        is None
    )
    after = await pointers.find_by_id(db, record.id)
    assert after is not None and after.reserved_total == 1000


async def test_a_cancelled_pointer_reserves_nothing(db: Database) -> None:
    record = await make_pointer(db, NOW, amount=1000)
    await pointers.cancel_pointer(db, record.account_id, record.token, NOW)
    assert (
        await reservations.reserve(db, record.id, 100, kind=ReservationKind.STREAM, now=NOW, lease=LEASE)
        is None
    )
    _, grant = await reservations.settle_and_reserve(
        db, [], record.id, 100, kind=ReservationKind.STREAM, now=NOW, lease=LEASE
    )
    assert grant is None


async def test_reserving_on_an_unknown_pointer_names_it(db: Database) -> None:
    with pytest.raises(PointerNotFound, match=r"^4242$"):
        await reservations.reserve(db, 4242, 100, kind=ReservationKind.STREAM, now=NOW, lease=LEASE)


async def test_a_batch_naming_a_reservation_twice_or_a_closed_one_settles_nothing(db: Database) -> None:
    record = await make_pointer(db, NOW, amount=1000)
    reservation = await _reserve(db, record.id, 300)
    with pytest.raises(ReservationClosed, match=f"^{reservation}$"):
        await reservations.settle_all(db, [(reservation, 100), (reservation, 100)], now=NOW)
    assert await _reservation(db, reservation) == ("open", 0)
    [settlement] = await reservations.settle_all(db, [(reservation, 100)], now=NOW)
    assert (settlement.reservation_id, settlement.pointer_id) == (reservation, record.id)
    with pytest.raises(ReservationClosed, match=f"^{reservation}$"):
        await reservations.settle(db, reservation, 100, now=NOW)


async def test_a_sender_lease_held_by_another_stream_names_the_pointer(db: Database) -> None:
    record = await make_pointer(db, NOW, amount=1000)
    ttl = timedelta(seconds=10)
    await reservations.settle_and_reserve(
        db, [], record.id, 100, kind=ReservationKind.STREAM, now=NOW, lease=LEASE, sender=("first", ttl)
    )
    with pytest.raises(SenderBusy, match=f"^{record.id}$"):
        await reservations.settle_and_reserve(
            db, [], record.id, 100, kind=ReservationKind.STREAM, now=NOW, lease=LEASE, sender=("second", ttl)
        )


async def test_extended_leases_keep_recovery_off_until_then_and_never_shorten_one(db: Database) -> None:
    record = await make_pointer(db, NOW, amount=1000)
    short = await _reserve(db, record.id, 10, lease=timedelta(seconds=60))
    long = await _reserve(db, record.id, 20, lease=timedelta(seconds=600))
    until = NOW + timedelta(seconds=300)
    await reservations.extend_leases(db, [short, long], until=until)
    assert await reservations.recover_expired(db, now=until) == []
    assert [r.reservation_id for r in await reservations.recover_expired(db, now=until + LEASE)] == [short]
    assert [
        r.reservation_id for r in await reservations.recover_expired(db, now=NOW + timedelta(seconds=601))
    ] == [long]


async def test_extending_the_lease_of_a_closed_reservation_extends_none(db: Database) -> None:
    record = await make_pointer(db, NOW, amount=1000)
    live = await _reserve(db, record.id, 10)
    closed = await _reserve(db, record.id, 20)
    await reservations.release(db, closed, now=NOW)
    with pytest.raises(ReservationClosed, match=f"^{closed}$"):
        await reservations.extend_leases(db, [live, closed], until=NOW + timedelta(hours=1))
    recovered = await reservations.recover_expired(db, now=NOW + LEASE + timedelta(seconds=1))
    assert [r.reservation_id for r in recovered] == [live]
