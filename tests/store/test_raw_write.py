"""`ConnectionRawWrite`: a pull's statements as `text()` on the ORM's connection, what `raw_write()` falls
back to where no driver-level writer serves the database. Run here on every backend (on PostgreSQL the server
uses asyncpg's writer, so nothing else would run it there): values bound as the column types bind them (the
ORM reads back what was written), rows locked with FOR UPDATE where the backend has it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

from sqlalchemy import Table

from spsp_pull.store import models, pointers, sender_lease
from spsp_pull.store.database import Database
from spsp_pull.store.lookups import Lookups
from spsp_pull.store.raw_write import ConnectionRawWrite
from spsp_pull.store.records import pointer_reader
from tests.store.pointer_factory import make_pointer

NOW = datetime(2024, 3, 1, 12, 30, 15, 250_000, tzinfo=UTC)
POINTERS = cast(Table, models.Pointer.__table__)


async def test_the_orm_connection_carries_a_pulls_statements(db: Database) -> None:
    record = await make_pointer(db, NOW, amount=1000)
    ttl = timedelta(seconds=10)
    async with db.write() as session:
        tx = ConnectionRawWrite(Lookups(db.engine.dialect), await session.connection())
        locked = await tx.select_one(POINTERS, "id", record.id, pointer_reader, lock=True)
        assert locked is not None and (locked.id, locked.usage) == (record.id, record.usage)
        assert await sender_lease.acquire_in(tx, record.id, "puller", now=NOW, ttl=ttl)
        assert not await sender_lease.acquire_in(tx, record.id, "another", now=NOW + ttl / 2, ttl=ttl)
        row = await tx.fetchrow("SELECT sender FROM pointers WHERE id = :id", lock=True, id=record.id)
        assert row is not None and row[0] == "puller"
        changed = await tx.execute(
            "UPDATE pointers SET reserved_total = :reserved WHERE id = :id AND sender_until = :until",
            reserved=tx.amount(2**64 - 1),
            id=record.id,
            until=tx.time(NOW + ttl),
        )
        assert changed == 1
    after = await pointers.find_by_id(db, record.id)
    assert after is not None and after.reserved_total == 2**64 - 1  # exact above 2**63 on SQLite too
    async with db.read() as session:
        assert (await session.get_one(models.Pointer, record.id)).sender_until == NOW + ttl
