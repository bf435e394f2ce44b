"""The durable webhook outbox: messages are written in the same transaction as the event they announce,
then claimed and delivered by a worker in any instance.

A message belongs to an account (its deliveries count against that account's share) and is signed, when
delivered, with the secrets in force then: the payout's own secret for a payout notification, else the
account's (see `store.accounts`). A rotation therefore also applies to messages already queued.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from spsp_pull.domain.outbound_targets import destination_of
from spsp_pull.domain.states import WebhookMessageState
from spsp_pull.store import models
from spsp_pull.store.accounts import signing_secrets
from spsp_pull.store.database import Database
from spsp_pull.store.raw_write import RawWrite


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    id: int
    pointer_id: int | None
    account_id: int | None
    url: str
    destination: str
    event: str
    body: str
    attempts: int
    created_at: datetime
    secrets: tuple[bytes, ...]  # what signs it now: current first; empty if nothing can


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
    account_id: int,
    pointer_id: int | None = None,
    payout_id: int | None = None,
) -> None:
    """Queue a message for `account_id`; with `payout_id`, it is signed with that payout's secret."""
    session.add(models.WebhookMessage(**_message(url, event, body, now, account_id, pointer_id, payout_id)))


async def enqueue_raw(
    tx: RawWrite,
    *,
    url: str,
    event: str,
    body: dict[str, object],
    now: datetime,
    account_id: int,
    pointer_id: int | None = None,
    payout_id: int | None = None,
) -> None:
    """`enqueue` within a `Database.raw_write()` transaction."""
    columns = _message(url, event, body, now, account_id, pointer_id, payout_id)
    columns.update(next_attempt_at=tx.time(now), created_at=tx.time(now))
    await tx.execute(
        "INSERT INTO webhook_outbox (pointer_id, account_id, payout_id, url, destination, event, body,"
        " state, attempts, next_attempt_at, claimed_until, created_at) VALUES (:pointer_id, :account_id,"
        " :payout_id, :url, :destination, :event, :body, :state, :attempts, :next_attempt_at,"
        " :claimed_until, :created_at)",
        **columns,
    )


def _message(
    url: str,
    event: str,
    body: dict[str, object],
    now: datetime,
    account_id: int,
    pointer_id: int | None,
    payout_id: int | None,
) -> dict[str, Any]:
    """The columns of a new outbox message."""
    return {
        "pointer_id": pointer_id,
        "account_id": account_id,
        "payout_id": payout_id,
        "url": url,
        "destination": destination_of(url),
        "event": event,
        "body": json.dumps(body, separators=(",", ":"), sort_keys=True),
        "state": WebhookMessageState.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "claimed_until": None,
        "created_at": now,
    }


async def withdraw_scheduled(session: AsyncSession, pointer_id: int, event: str, now: datetime) -> None:
    """Withdraw the pointer's `event` messages queued for a time after `now` and not yet tried (an
    announcement the change being made now voids: the end of a pause that was moved or ended)."""
    message = models.WebhookMessage
    await session.execute(
        update(message)
        .where(
            message.pointer_id == pointer_id,
            message.event == event,
            message.state == WebhookMessageState.PENDING,
            message.attempts == 0,
            message.created_at > now,
        )
        .values(state=WebhookMessageState.WITHDRAWN)
    )


async def claim_due(
    db: Database,
    *,
    now: datetime,
    claim_for: timedelta,
    limit: int,
    skip_accounts: Collection[int] = (),
    skip_destinations: Collection[str] = (),
) -> list[OutboxMessage]:
    """Take up to `limit` due messages for delivery, none of `skip_accounts` or to `skip_destinations` (those
    with no free delivery slot); another worker will not take them before `now + claim_for` (so a worker that
    dies mid-delivery does not lose them)."""
    message = models.WebhookMessage
    query = (
        select(message)
        .where(
            message.state == WebhookMessageState.PENDING,
            message.next_attempt_at <= now,
            or_(message.claimed_until.is_(None), message.claimed_until <= now),
        )
        .order_by(message.next_attempt_at, message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if skip_accounts:
        query = query.where(or_(message.account_id.is_(None), message.account_id.not_in(skip_accounts)))
    if skip_destinations:
        query = query.where(or_(message.destination.is_(None), message.destination.not_in(skip_destinations)))
    async with db.write() as session:
        rows = (await session.scalars(query)).all()
        for row in rows:
            row.claimed_until = now + claim_for
        return [
            OutboxMessage(
                row.id,
                row.pointer_id,
                row.account_id,
                row.url,
                row.destination or destination_of(row.url),
                row.event,
                row.body,
                row.attempts,
                row.created_at,
                await _signing_secrets(session, row, now),
            )
            for row in rows
        ]


async def _signing_secrets(
    session: AsyncSession, row: models.WebhookMessage, now: datetime
) -> tuple[bytes, ...]:
    if row.payout_id is not None:
        payout = await session.get_one(models.Payout, row.payout_id)
        return () if payout.notification_secret is None else (payout.notification_secret.encode(),)
    if row.account_id is not None:
        account = await session.get_one(models.Account, row.account_id)
        return tuple(secret.encode() for secret in signing_secrets(account, now))
    return ()


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
            row.state = WebhookMessageState.DELIVERED
        elif retry_at is None:
            row.state = WebhookMessageState.DEAD
        else:
            row.next_attempt_at = retry_at


async def message_state(db: Database, message_id: int) -> tuple[WebhookMessageState, list[DeliveryRecord]]:
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


async def messages_for_pointer(db: Database, pointer_id: int) -> list[tuple[int, str, WebhookMessageState]]:
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
