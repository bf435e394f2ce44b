"""Stored responses for `Idempotency-Key`.

The key is claimed before the request runs, so two concurrent requests with one key never both run: the
second sees the claim (in progress, or the finished response to replay, or a conflict if its body differs).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from spsp_pull.store import models
from spsp_pull.store.database import Database

IN_PROGRESS = 0


@dataclass(frozen=True, slots=True)
class StoredResponse:
    fingerprint: str
    status: int  # IN_PROGRESS while the first request with this key is still running
    body: str
    content_type: str


async def claim(
    db: Database, account_id: int, key: str, fingerprint: str, now: datetime
) -> StoredResponse | None:
    """Claim the key for a new request (None), or return what an earlier request with it left."""
    try:
        async with db.write() as session:
            existing = await session.get(models.IdempotentRequest, (account_id, key))
            if existing is not None:
                return _stored(existing)
            session.add(
                models.IdempotentRequest(
                    account_id=account_id,
                    key=key,
                    fingerprint=fingerprint,
                    status=IN_PROGRESS,
                    body="",
                    content_type="",
                    created_at=now,
                )
            )
        return None
    except IntegrityError:
        async with db.read() as session:
            return _stored(await session.get_one(models.IdempotentRequest, (account_id, key)))


async def complete(
    db: Database, account_id: int, key: str, status: int, body: str, content_type: str
) -> None:
    async with db.write() as session:
        row = await session.get_one(models.IdempotentRequest, (account_id, key))
        row.status = status
        row.body = body
        row.content_type = content_type


async def abandon(db: Database, account_id: int, key: str) -> None:
    """Forget a claim whose request failed unexpectedly, so the client may retry with the same key."""
    async with db.write() as session:
        await session.execute(
            delete(models.IdempotentRequest).where(
                models.IdempotentRequest.account_id == account_id, models.IdempotentRequest.key == key
            )
        )


def _stored(row: models.IdempotentRequest) -> StoredResponse:
    return StoredResponse(row.fingerprint, row.status, row.body, row.content_type)
