"""Pointer records read back from rows: every counter lands in the field of its own name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spsp_pull.domain.agreement import Changes, Usage, balance
from spsp_pull.domain.states import ReservationKind
from spsp_pull.store import models, pointers, reservations
from spsp_pull.store.database import Database
from spsp_pull.store.records import PointerRecord, pointer_record
from tests.store.pointer_factory import make_pointer, terms

LEASE = timedelta(seconds=60)


async def _orm_and_lookups(db: Database, record: PointerRecord) -> list[PointerRecord | None]:
    async with db.read() as session:
        orm = pointer_record(await session.get_one(models.Pointer, record.id))
    return [
        orm,
        await pointers.find_by_token(db, record.token),
        await pointers.find_by_id(db, record.id),
        await pointers.find_by_tag(db, record.tag),
    ]


async def test_a_second_reservation_in_cycle_two_of_an_uncapped_pointer_counts_all_of_cycle_one(
    db: Database,
) -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    record = await make_pointer(db, start, amount=1000, interval="P1D", cycles=10, cap=False)
    first = await reservations.reserve(
        db, record.id, 300, kind=ReservationKind.STREAM, now=start, lease=LEASE
    )
    assert first is not None
    await reservations.settle(db, first.reservation_id, 300, now=start)

    day_two = start + timedelta(days=1, hours=1)
    second = await reservations.reserve(
        db, record.id, 100, kind=ReservationKind.STREAM, now=day_two, lease=LEASE
    )
    assert second is not None and second.cycle == 2
    # Two cycles granted 2,000; 300 settled in cycle 1 and 100 held in cycle 2 leave 1,600.
    third = await reservations.reserve(
        db, record.id, 5000, kind=ReservationKind.STREAM, now=day_two, lease=LEASE
    )
    assert third is not None and third.amount == 1600


async def test_each_usage_counter_is_read_from_its_own_column(db: Database) -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    record = await make_pointer(db, start, amount=1000, interval="P1D", cycles=10, cap=False)
    first = await reservations.reserve(
        db, record.id, 300, kind=ReservationKind.STREAM, now=start, lease=LEASE
    )
    assert first is not None
    await reservations.settle(db, first.reservation_id, 250, now=start)
    day_two = start + timedelta(days=1)
    second = await reservations.reserve(
        db, record.id, 70, kind=ReservationKind.STREAM, now=day_two, lease=LEASE
    )
    assert second is not None

    # Four counters, four different values: a field read from another's column cannot go unseen.
    expected = Usage(pulled_total=250, used_since_anchor=320, used_in_cycle=70, cycle=2)
    for _ in range(2):  # the lookups built, then with what they remembered of the version
        for found in await _orm_and_lookups(db, record):
            assert found is not None
            assert found.usage == expected
            assert found.reserved_total == 70
            assert balance(found.version, found.usage, day_two, None).available == 1680


async def test_a_record_reads_back_its_terms_and_creation_time_before_and_after_a_revision(
    db: Database,
) -> None:
    created = datetime(2024, 3, 1, 9, 30, 15, 250_000, tzinfo=UTC)
    expiry = created + timedelta(days=90)
    made = terms(created, amount=500, interval="P1W", cycles=8, cap=True, expiry=expiry)
    record = await make_pointer(db, created, amount=500, interval="P1W", cycles=8, cap=True, expiry=expiry)
    for found in await _orm_and_lookups(db, record):
        assert found is not None
        assert (found.created_at, found.version.terms) == (created, made)

    later = created + timedelta(days=10)
    await pointers.revise_pointer(db, record.account_id, record.token, Changes(amount=700), later)
    for found in await _orm_and_lookups(db, record):
        assert found is not None
        assert (found.created_at, found.version.number) == (created, 2)
        assert (found.terms.amount, found.terms.cap, found.terms.expiry) == (700, True, expiry)
