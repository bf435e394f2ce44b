"""Which stream may send for a pointer right now (RFC 0036: only one `sendMax` at a time).

A lease names its holder and runs out by itself, so a crashed instance never blocks a pointer for long. It is
taken and released in the pull's own transactions (`reservations.settle_and_reserve`, `settle_all`), on the
driver itself (`Database.raw_write`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from spsp_pull.store.database import Database
from spsp_pull.store.raw_write import RawWrite


async def acquire(db: Database, pointer_id: int, holder: str, *, now: datetime, ttl: timedelta) -> bool:
    """Take (or extend) the lease; False while another holder's lease runs."""
    async with db.raw_write() as tx:
        return await acquire_in(tx, pointer_id, holder, now=now, ttl=ttl)


async def acquire_in(tx: RawWrite, pointer_id: int, holder: str, *, now: datetime, ttl: timedelta) -> bool:
    """`acquire` within a transaction the caller holds."""
    taken = await tx.execute(
        "UPDATE pointers SET sender = :holder, sender_until = :until WHERE id = :id"
        " AND (sender IS NULL OR sender = :holder OR sender_until <= :now)",
        holder=holder,
        until=tx.time(now + ttl),
        id=pointer_id,
        now=tx.time(now),
    )
    return taken > 0


async def release(db: Database, pointer_id: int, holder: str) -> None:
    async with db.raw_write() as tx:
        await release_in(tx, pointer_id, holder)


async def release_in(tx: RawWrite, pointer_id: int, holder: str) -> None:
    """`release` within a transaction the caller holds."""
    await tx.execute(
        "UPDATE pointers SET sender = NULL, sender_until = NULL WHERE id = :id AND sender = :holder",
        id=pointer_id,
        holder=holder,
    )
