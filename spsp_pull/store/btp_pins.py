"""The embedded BTP endpoint's token pins in the database (a `TokenPinStore`).

An account name is bound to the digest of the first token it logs in with; the binding outlives restarts
and holds for every instance sharing the database. At most `max_accounts` names are pinned: a new name
beyond them is refused (FULL). A new pin is written under one lock (SQLite's write lock; a PostgreSQL
advisory lock), so of concurrent first logins with different tokens exactly one wins and the count never
passes the bound. Logins of pinned names only read.
"""

from __future__ import annotations

import hmac

from sqlalchemy import func, select, text

from spsp_pull.domain.clock import Clock
from spsp_pull.store import models
from spsp_pull.store.database import Database
from stream.aio.accounts import PinVerdict

_PIN_LOCK_ID = 0x5_9_5_1  # PostgreSQL advisory lock (transaction-scoped) around pinning a new name


class DatabaseTokenPins:
    def __init__(self, db: Database, clock: Clock, max_accounts: int) -> None:
        self._db = db
        self._clock = clock
        self._max_accounts = max_accounts

    async def pin(self, account: str, digest: bytes) -> PinVerdict:
        presented = digest.hex()
        pinned = await self._pinned(account)
        if pinned is not None:
            return _compare(pinned, presented)
        async with self._db.write() as session:
            if not self._db.is_sqlite:
                await session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PIN_LOCK_ID})
            row = await session.get(models.BtpTokenPin, account)
            if row is not None:
                return _compare(row.token_digest, presented)
            count = await session.scalar(select(func.count()).select_from(models.BtpTokenPin))
            if (count or 0) >= self._max_accounts:
                return PinVerdict.FULL
            session.add(
                models.BtpTokenPin(account=account, token_digest=presented, pinned_at=self._clock.now())
            )
        return PinVerdict.ACCEPTED

    async def _pinned(self, account: str) -> str | None:
        async with self._db.read() as session:
            return await session.scalar(
                select(models.BtpTokenPin.token_digest).where(models.BtpTokenPin.account == account)
            )


def _compare(pinned: str, presented: str) -> PinVerdict:
    return PinVerdict.ACCEPTED if hmac.compare_digest(pinned, presented) else PinVerdict.WRONG_TOKEN
