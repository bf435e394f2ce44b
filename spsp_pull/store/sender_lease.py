"""Which stream may send for a pointer right now (RFC 0036: only one `sendMax` at a time).

A lease names its holder and runs out by itself, so a crashed instance never blocks a pointer for long.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from spsp_pull.store import models
from spsp_pull.store.database import Database


async def acquire(db: Database, pointer_id: int, holder: str, *, now: datetime, ttl: timedelta) -> bool:
    """Take (or extend) the lease; False while another holder's lease runs."""
    async with db.write() as session:
        return await acquire_in(session, pointer_id, holder, now=now, ttl=ttl)


async def acquire_in(
    session: AsyncSession, pointer_id: int, holder: str, *, now: datetime, ttl: timedelta
) -> bool:
    """`acquire` within a transaction the caller holds."""
    result = await session.execute(
        update(models.Pointer)
        .where(
            models.Pointer.id == pointer_id,
            or_(
                models.Pointer.sender.is_(None),
                models.Pointer.sender == holder,
                models.Pointer.sender_until <= now,
            ),
        )
        .values(sender=holder, sender_until=now + ttl)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def release(db: Database, pointer_id: int, holder: str) -> None:
    async with db.write() as session:
        await release_in(session, pointer_id, holder)


async def release_in(session: AsyncSession, pointer_id: int, holder: str) -> None:
    """`release` within a transaction the caller holds."""
    await session.execute(
        update(models.Pointer)
        .where(and_(models.Pointer.id == pointer_id, models.Pointer.sender == holder))
        .values(sender=None, sender_until=None)
    )
