"""Making pointers for store tests."""

from __future__ import annotations

from datetime import datetime

from spsp_pull.domain.agreement import Terms
from spsp_pull.domain.duration import parse_interval
from spsp_pull.store.accounts import ensure_admin
from spsp_pull.store.database import Database
from spsp_pull.store.pointers import NewPointer, create_pointer
from spsp_pull.store.records import PointerRecord


def terms(
    start: datetime,
    *,
    amount: int = 10_000,
    interval: str = "P1M",
    cycles: int = 12,
    cap: bool = False,
    expiry: datetime | None = None,
) -> Terms:
    return Terms(
        amount=amount,
        asset_code="USD",
        asset_scale=2,
        interval=parse_interval(interval),
        cycles=cycles,
        cap=cap,
        start=start,
        expiry=expiry,
    )


async def make_pointer(db: Database, now: datetime, **kwargs: object) -> PointerRecord:
    admin = await ensure_admin(db, "test-admin-key", now)
    return await create_pointer(db, NewPointer(account_id=admin.id, terms=terms(now, **kwargs)), now)  # type: ignore[arg-type]
