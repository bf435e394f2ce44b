"""Migration 0008: the database itself refuses a state or kind outside its enum (CHECK constraints), the
models write and read the enum's members, and the migration steps down to 0007 and up again with rows in the
tables it changes (tests/store/test_schema.py compares the constraints with the models)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from spsp_pull.domain.clock import ManualClock
from spsp_pull.domain.states import PullKind, ReservationKind, ReservationState
from spsp_pull.store import models
from spsp_pull.store.database import Database
from tests.store.pointer_factory import make_pointer
from tests.store.schema import downgrade


async def ledger_rows(db: Database, now: datetime) -> tuple[int, int]:
    """A settled reservation and its pull, written through the models: their ids."""
    pointer = await make_pointer(db, now)
    async with db.write() as session:
        reservation = models.Reservation(
            pointer_id=pointer.id,
            amount=10,
            kind=ReservationKind.STREAM,
            version=1,
            cycle=0,
            state=ReservationState.SETTLED,
            settled=10,
            created_at=now,
            lease_until=now,
            closed_at=now,
        )
        session.add(reservation)
        await session.flush()
        pull = models.Pull(
            pointer_id=pointer.id,
            reservation_id=reservation.id,
            amount=10,
            kind=PullKind.STREAM,
            cycle=0,
            created_at=now,
        )
        session.add(pull)
        await session.flush()
        return reservation.id, pull.id


BOGUS = [
    ("reservations", "state", "lost"),
    ("reservations", "kind", "gift"),
    ("pulls", "kind", "gift"),
]


async def set_column(db: Database, table: str, column: str, value: str) -> None:
    async with db.write() as session:
        await session.execute(text(f"UPDATE {table} SET {column} = :value"), {"value": value})


@pytest.mark.parametrize(("table", "column", "value"), BOGUS)
async def test_the_database_refuses_a_value_outside_the_enum(
    db: Database, clock: ManualClock, table: str, column: str, value: str
) -> None:
    await ledger_rows(db, clock.now())
    with pytest.raises(IntegrityError):
        await set_column(db, table, column, value)


async def test_rows_read_back_as_enum_members(db: Database, clock: ManualClock) -> None:
    reservation_id, pull_id = await ledger_rows(db, clock.now())
    async with db.read() as session:
        reservation = await session.get(models.Reservation, reservation_id)
        pull = await session.get(models.Pull, pull_id)
        assert reservation is not None and pull is not None
        assert reservation.state is ReservationState.SETTLED
        assert reservation.kind is ReservationKind.STREAM
        assert pull.kind is PullKind.STREAM
        settled = select(models.Reservation.id).where(models.Reservation.state == ReservationState.SETTLED)
        assert (await session.scalars(settled)).all() == [reservation_id]


async def test_down_to_0007_and_up_again_keeps_the_rows_and_the_checks(
    db: Database, clock: ManualClock
) -> None:
    reservation_id, _ = await ledger_rows(db, clock.now())
    await downgrade(db, "0007")
    await set_column(db, "reservations", "kind", "payout")  # any text goes at 0007; this one is valid
    await db.migrate()
    async with db.read() as session:
        reservation = await session.get(models.Reservation, reservation_id)
        assert reservation is not None
        assert (reservation.kind, reservation.state) == (ReservationKind.PAYOUT, ReservationState.SETTLED)
    with pytest.raises(IntegrityError):
        await set_column(db, "reservations", "state", "lost")
