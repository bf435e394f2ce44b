"""The durable webhook outbox: messages are written in the same transaction as the event they announce,
then claimed and delivered by a worker in any instance."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spsp_pull.store import models
from spsp_pull.store.database import Database


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    pointer_id: int | None
    url: str
    event: str
    body: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    attempt: int
    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int


def enqueue(
    session: AsyncSession,
    *,
    url: str,
    event: str,
    body: dict[str, object],
    now: datetime,
    pointer_id: int | None = None,
) -> None:
    session.add(
        models.WebhookMessage(
            pointer_id=pointer_id,
            url=url,
            event=event,
            body=json.dumps(body, separators=(",", ":"), sort_keys=True),
            state="pending",
            attempts=0,
            next_attempt_at=now,
            claimed_until=None,
            created_at=now,
        )
    )


async def claim_due(db: Database, *, now: datetime, claim_for: timedelta, limit: int) -> list[OutboxMessage]:
    """Take up to `limit` due messages for delivery; another worker will not take them before
    `now + claim_for` (so a worker that dies mid-delivery does not lose them)."""
    async with db.write() as session:
        rows = (
            await session.scalars(
                select(models.WebhookMessage)
                .where(
                    models.WebhookMessage.state == "pending",
                    models.WebhookMessage.next_attempt_at <= now,
                    or_(
                        models.WebhookMessage.claimed_until.is_(None),
                        models.WebhookMessage.claimed_until <= now,
                    ),
                )
                .order_by(models.WebhookMessage.next_attempt_at, models.WebhookMessage.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            row.claimed_until = now + claim_for
        return [
            OutboxMessage(row.id, row.pointer_id, row.url, row.event, row.body, row.attempts, row.created_at)
            for row in rows
        ]


async def record_attempt(
    db: Database,
    message_id: int,
    *,
    now: datetime,
    delivered: bool,
    status_code: int | None,
    error: str | None,
    duration_ms: int,
    retry_at: datetime | None,
) -> None:
    """Log one delivery attempt; schedule the next one at `retry_at`, or give up (dead) when it is None."""
    async with db.write() as session:
        row = await session.get_one(models.WebhookMessage, message_id, with_for_update=True)
        row.attempts += 1
        session.add(
            models.WebhookDelivery(
                message_id=message_id,
                attempt=row.attempts,
                attempted_at=now,
                status_code=status_code,
                error=error,
                duration_ms=duration_ms,
            )
        )
        row.claimed_until = None
        if delivered:
            row.state = "delivered"
        elif retry_at is None:
            row.state = "dead"
        else:
            row.next_attempt_at = retry_at


async def message_state(db: Database, message_id: int) -> tuple[str, list[DeliveryRecord]]:
    async with db.read() as session:
        row = await session.get_one(models.WebhookMessage, message_id)
        deliveries = (
            await session.scalars(
                select(models.WebhookDelivery)
                .where(models.WebhookDelivery.message_id == message_id)
                .order_by(models.WebhookDelivery.attempt)
            )
        ).all()
        return row.state, [
            DeliveryRecord(d.attempt, d.attempted_at, d.status_code, d.error, d.duration_ms)
            for d in deliveries
        ]


async def messages_for_pointer(db: Database, pointer_id: int) -> list[tuple[int, str, str]]:
    """(id, event, state) of every message about a pointer, oldest first."""
    async with db.read() as session:
        rows = (
            await session.execute(
                select(models.WebhookMessage.id, models.WebhookMessage.event, models.WebhookMessage.state)
                .where(models.WebhookMessage.pointer_id == pointer_id)
                .order_by(models.WebhookMessage.id)
            )
        ).all()
        return [(row[0], row[1], row[2]) for row in rows]


async def release_claims(db: Database, message_ids: list[int]) -> None:
    if not message_ids:
        return
    async with db.write() as session:
        await session.execute(
            update(models.WebhookMessage)
            .where(models.WebhookMessage.id.in_(message_ids))
            .values(claimed_until=None)
        )
