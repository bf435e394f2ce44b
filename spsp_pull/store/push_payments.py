"""Push payments received at the plain SPSP endpoint, recorded per connection."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from spsp_pull.store import models
from spsp_pull.store.database import Database


async def record_push(
    db: Database, *, amount: int, asset_code: str, asset_scale: int, source: str | None, now: datetime
) -> None:
    async with db.write() as session:
        session.add(
            models.PushPayment(
                amount=amount, asset_code=asset_code, asset_scale=asset_scale, source=source, received_at=now
            )
        )


async def push_total(db: Database) -> int:
    async with db.read() as session:
        amounts = (await session.scalars(select(models.PushPayment.amount))).all()
        return sum(amounts)


async def push_count(db: Database) -> int:
    async with db.read() as session:
        return int((await session.scalar(select(func.count()).select_from(models.PushPayment))) or 0)
