"""Stored responses for `Idempotency-Key`.

The key is claimed before the request runs, so two concurrent requests with one key never both run: the
second sees the claim (in progress, or the finished response to replay, or a conflict if its body differs).

Nothing is kept forever. A claim whose request never finished (its process crashed) lapses after
`claim_ttl`, and the key can be claimed again; a finished response is replayed for `retention`, then
forgotten (and purged, a bounded batch per statement). A claim is named by the time it was taken, so a
request that outlived its claim can neither store its response over its successor's nor drop its claim.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from spsp_pull.store import models
from spsp_pull.store.database import Database

IN_PROGRESS = 0
CLAIM_TTL = timedelta(seconds=60)
RETENTION = timedelta(hours=24)
PURGE_BATCH = 1000

_Row = models.IdempotentRequest


@dataclass(frozen=True, slots=True)
class Expiry:
    """How long a claim holds its key (longer than any request takes) and how long a response is kept."""

    claim_ttl: timedelta = CLAIM_TTL
    retention: timedelta = RETENTION

    def lapsed(self, status: int, created_at: datetime, now: datetime) -> bool:
        return now >= created_at + (self.claim_ttl if status == IN_PROGRESS else self.retention)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    fingerprint: str
    status: int  # IN_PROGRESS while the first request with this key is still running
    body: str
    content_type: str


async def claim(
    db: Database, account_id: int, key: str, fingerprint: str, now: datetime, expiry: Expiry = Expiry()
) -> StoredResponse | None:
    """Claim the key for a new request at `now` (None), or return what an earlier request with it left.

    A lapsed claim or response is replaced by the new claim."""
    try:
        async with db.write() as session:
            existing = await session.get(_Row, (account_id, key), with_for_update=True)
            if existing is None:
                session.add(
                    _Row(
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
            if not expiry.lapsed(existing.status, existing.created_at, now):
                return _stored(existing)
            existing.fingerprint = fingerprint
            existing.status = IN_PROGRESS
            existing.body = existing.content_type = ""
            existing.created_at = now
            return None
    except IntegrityError:
        async with db.read() as session:
            return _stored(await session.get_one(_Row, (account_id, key)))


async def complete(
    db: Database,
    account_id: int,
    key: str,
    claimed_at: datetime,
    status: int,
    body: str,
    content_type: str,
) -> bool:
    """Store the response of the claim taken at `claimed_at`; False if that claim had lapsed and is gone."""
    async with db.write() as session:
        result = await session.execute(
            update(_Row)
            .where(*_claim_taken_at(account_id, key, claimed_at))
            .values(status=status, body=body, content_type=content_type)
        )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def abandon(db: Database, account_id: int, key: str, claimed_at: datetime) -> None:
    """Forget a claim whose request failed unexpectedly, so the client may retry with the same key."""
    async with db.write() as session:
        await session.execute(delete(_Row).where(*_claim_taken_at(account_id, key, claimed_at)))


async def purge(db: Database, now: datetime, expiry: Expiry = Expiry(), *, batch: int = PURGE_BATCH) -> int:
    """Delete what is older than `retention` (claims and responses), at most `batch` rows per statement so
    no transaction holds many rows; returns how many went."""
    cutoff = now - expiry.retention
    purged = 0
    while True:
        victims = (
            select(_Row.account_id, _Row.key)
            .where(_Row.created_at <= cutoff)
            .order_by(_Row.created_at)
            .limit(batch)
        )
        async with db.write() as session:
            result = await session.execute(delete(_Row).where(tuple_(_Row.account_id, _Row.key).in_(victims)))
        deleted = int(result.rowcount)  # type: ignore[attr-defined]
        purged += deleted
        if deleted < batch:
            return purged


def _claim_taken_at(account_id: int, key: str, claimed_at: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        _Row.account_id == account_id,
        _Row.key == key,
        _Row.status == IN_PROGRESS,
        _Row.created_at == claimed_at,
    )


def _stored(row: models.IdempotentRequest) -> StoredResponse:
    return StoredResponse(row.fingerprint, row.status, row.body, row.content_type)
