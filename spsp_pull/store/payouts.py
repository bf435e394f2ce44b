"""Payouts, their audit trail, on-chain batches and LNURL-withdraw links: rows, queries and row locks.

What a payout may do next is decided by `spsp_pull.bridge.states`; the functions here only read, lock and
write rows, most of them inside a transaction the caller holds (so that a status change, its audit event
and its notification are one commit). Reservations against the allowance stay in `reservations`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from spsp_pull.domain.states import PayoutBatchState, PayoutStatus
from spsp_pull.store import models
from spsp_pull.store.database import Database


@dataclass(frozen=True, slots=True)
class NewPayout:
    public_id: str
    pointer_id: int
    account_id: int
    created_by: str
    rail: str
    destination: str
    address: str | None
    script_pubkey: str | None
    invoice: str | None
    payment_hash: str | None
    amount_side: str
    transfer_msat: int
    fee_msat: int
    debit: int
    asset_code: str
    asset_scale: int
    rate: str
    expires_at: datetime
    notification_url: str | None = None
    notification_secret: str | None = None
    comment: str | None = None
    metadata: dict[str, object] | None = None


@dataclass(frozen=True, slots=True)
class PayoutRecord:
    id: int
    public_id: str
    pointer_id: int
    account_id: int
    created_by: str
    rail: str
    destination: str
    address: str | None
    script_pubkey: str | None
    invoice: str | None
    payment_hash: str | None
    amount_side: str
    transfer_msat: int
    fee_msat: int
    debit: int
    asset_code: str
    asset_scale: int
    rate: str
    status: str
    reservation_id: int | None
    batch_id: int | None
    vout: int | None
    attempts: int
    claimed_until: datetime | None
    preimage: str | None
    routing_fee_msat: int | None
    failure_reason: str | None
    approved_by: str | None
    notification_url: str | None
    comment: str | None
    metadata: dict[str, object] | None
    created_at: datetime
    expires_at: datetime
    approved_at: datetime | None
    sent_at: datetime | None
    confirmed_at: datetime | None
    txid: str | None = None
    confirmations: int | None = None


@dataclass(frozen=True, slots=True)
class PayoutEventRecord:
    id: int
    at: datetime
    kind: str
    from_status: str | None
    to_status: str | None
    detail: dict[str, object] | None


@dataclass(frozen=True, slots=True)
class BatchRecord:
    id: int
    state: str
    txid: str | None
    tx_hex: str | None
    fee_sat: int | None
    inputs: tuple[tuple[str, int], ...]
    confirmations: int
    created_at: datetime
    claimed_until: datetime | None
    broadcast_at: datetime | None


@dataclass(frozen=True, slots=True)
class PayoutFilter:
    """Which payouts a listing shows; every field narrows it (None / empty: no condition)."""

    account_id: int | None = None
    pointer_id: int | None = None
    statuses: tuple[str, ...] = ()
    rail: str | None = None
    time_from: datetime | None = None
    time_to: datetime | None = None
    address: str | None = None
    txid: str | None = None
    payment_hash: str | None = None


@dataclass(frozen=True, slots=True)
class ReservationLag:
    """A payout whose reservation is still open although its status says it should be closed."""

    payout_id: int
    reservation_id: int
    status: str
    debit: int


@dataclass(frozen=True, slots=True)
class LnurlRecord:
    id: int
    pointer_id: int
    rate: str
    min_msat: int
    max_msat: int
    expires_at: datetime
    used_at: datetime | None
    payout_id: int | None = field(default=None)


# -- payouts ---------------------------------------------------------------------------------------


def insert_payout(session: AsyncSession, spec: NewPayout, *, status: str, now: datetime) -> models.Payout:
    """Add a payout row (flushed by the caller). The invoice's payment hash is held as live, so a second
    live payout of the same invoice fails the commit with an IntegrityError."""
    row = models.Payout(
        public_id=spec.public_id,
        pointer_id=spec.pointer_id,
        account_id=spec.account_id,
        created_by=spec.created_by,
        rail=spec.rail,
        destination=spec.destination,
        address=spec.address,
        script_pubkey=spec.script_pubkey,
        invoice=spec.invoice,
        payment_hash=spec.payment_hash,
        live_payment_hash=spec.payment_hash,
        amount_side=spec.amount_side,
        transfer_msat=spec.transfer_msat,
        fee_msat=spec.fee_msat,
        debit=spec.debit,
        asset_code=spec.asset_code,
        asset_scale=spec.asset_scale,
        rate=spec.rate,
        status=status,
        attempts=0,
        notification_url=spec.notification_url,
        notification_secret=spec.notification_secret,
        comment=spec.comment,
        metadata_json=spec.metadata,
        created_at=now,
        expires_at=spec.expires_at,
    )
    session.add(row)
    return row


async def lock_payout(session: AsyncSession, payout_id: int) -> models.Payout | None:
    """The payout row, held until the transaction ends."""
    query = select(models.Payout).where(models.Payout.id == payout_id).with_for_update()
    return (await session.scalars(query)).one_or_none()


def set_status(row: models.Payout, status: PayoutStatus, *, now: datetime, live: bool, final: bool) -> None:
    """Move the row to `status`; a payout that no longer stands for its invoice frees the invoice for
    another payout (`live=False`), and a final one records when it ended."""
    row.status = status
    if not live:
        row.live_payment_hash = None
    if final and row.closed_at is None:
        row.closed_at = now


def add_event(
    session: AsyncSession,
    payout_id: int,
    *,
    now: datetime,
    kind: str,
    from_status: str | None = None,
    to_status: str | None = None,
    detail: dict[str, object] | None = None,
) -> None:
    session.add(
        models.PayoutEvent(
            payout_id=payout_id,
            at=now,
            kind=kind,
            from_status=from_status,
            to_status=to_status,
            detail=detail,
        )
    )


async def record(session: AsyncSession, row: models.Payout) -> PayoutRecord:
    """The record of a row, with its batch's txid and confirmations."""
    batch = None if row.batch_id is None else await session.get(models.PayoutBatch, row.batch_id)
    return _record(row, batch)


async def find_payout(
    db: Database, *, public_id: str | None = None, payout_id: int | None = None
) -> PayoutRecord | None:
    if (public_id is None) == (payout_id is None):
        raise ValueError("give public_id or payout_id")
    condition = models.Payout.public_id == public_id if public_id else models.Payout.id == payout_id
    async with db.read() as session:
        row = (await session.scalars(select(models.Payout).where(condition))).one_or_none()
        return None if row is None else await record(session, row)


async def list_payouts(
    db: Database, where: PayoutFilter, *, offset: int, limit: int
) -> tuple[list[PayoutRecord], int]:
    """A page of payouts, newest first, and how many match in all."""
    conditions = _conditions(where)
    joined = models.PayoutBatch.id == models.Payout.batch_id
    counting = (
        select(func.count(models.Payout.id))
        .select_from(models.Payout)
        .outerjoin(models.PayoutBatch, joined)
        .where(*conditions)
    )
    query = (
        select(models.Payout, models.PayoutBatch)
        .outerjoin(models.PayoutBatch, joined)
        .where(*conditions)
        .order_by(models.Payout.id.desc())
        .offset(offset)
        .limit(limit)
    )
    async with db.read() as session:
        total = await session.scalar(counting)
        rows = (await session.execute(query)).all()
        return [_record(payout, batch) for payout, batch in rows], int(total or 0)


def _conditions(where: PayoutFilter) -> list[ColumnElement[bool]]:
    payout = models.Payout
    conditions: list[ColumnElement[bool]] = []
    if where.account_id is not None:
        conditions.append(payout.account_id == where.account_id)
    if where.pointer_id is not None:
        conditions.append(payout.pointer_id == where.pointer_id)
    if where.statuses:
        conditions.append(payout.status.in_(where.statuses))
    if where.rail is not None:
        conditions.append(payout.rail == where.rail)
    if where.time_from is not None:
        conditions.append(payout.created_at >= where.time_from)
    if where.time_to is not None:
        conditions.append(payout.created_at <= where.time_to)
    if where.address is not None:
        conditions.append(payout.address == where.address)
    if where.txid is not None:
        conditions.append(models.PayoutBatch.txid == where.txid)
    if where.payment_hash is not None:
        conditions.append(payout.payment_hash == where.payment_hash)
    return conditions


async def payout_events(db: Database, payout_id: int) -> list[PayoutEventRecord]:
    async with db.read() as session:
        rows = (
            await session.scalars(
                select(models.PayoutEvent)
                .where(models.PayoutEvent.payout_id == payout_id)
                .order_by(models.PayoutEvent.id)
            )
        ).all()
        return [PayoutEventRecord(r.id, r.at, r.kind, r.from_status, r.to_status, r.detail) for r in rows]


async def payout_ids(
    db: Database,
    *,
    status: str,
    rail: str | None = None,
    expired_before: datetime | None = None,
    claim_over_at: datetime | None = None,
    limit: int = 100,
) -> list[int]:
    """Ids of payouts in `status` (oldest first), optionally only expired offers or payouts whose
    dispatch claim has run out."""
    query = select(models.Payout.id).where(models.Payout.status == status)
    if rail is not None:
        query = query.where(models.Payout.rail == rail)
    if expired_before is not None:
        query = query.where(models.Payout.expires_at <= expired_before)
    if claim_over_at is not None:
        query = query.where(
            or_(models.Payout.claimed_until.is_(None), models.Payout.claimed_until <= claim_over_at)
        )
    async with db.read() as session:
        return list((await session.scalars(query.order_by(models.Payout.id).limit(limit))).all())


async def queued_on_cancelled_pointers(db: Database, *, limit: int = 100) -> list[int]:
    """Queued payouts not yet taken into a batch whose pointer the payer has cancelled since."""
    query = (
        select(models.Payout.id)
        .join(models.Pointer, models.Pointer.id == models.Payout.pointer_id)
        .where(
            models.Payout.status == "QUEUED",
            models.Payout.batch_id.is_(None),
            models.Pointer.cancelled_at.is_not(None),
        )
        .order_by(models.Payout.id)
        .limit(limit)
    )
    async with db.read() as session:
        return list((await session.scalars(query)).all())


async def lock_next_queued(
    session: AsyncSession, *, rail: str, now: datetime, limit: int
) -> list[models.Payout]:
    """Queued payouts of a rail that no batch has taken, oldest approval first, locked (rows another
    transaction holds are skipped on PostgreSQL)."""
    query = (
        select(models.Payout)
        .where(
            models.Payout.status == "QUEUED",
            models.Payout.rail == rail,
            models.Payout.batch_id.is_(None),
            or_(models.Payout.claimed_until.is_(None), models.Payout.claimed_until <= now),
        )
        .order_by(models.Payout.approved_at, models.Payout.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list((await session.scalars(query)).all())


# -- reservations of payouts ------------------------------------------------------------------------


async def reservation_lags(
    db: Database, *, statuses: Sequence[str], limit: int = 100
) -> list[ReservationLag]:
    """Payouts in one of `statuses` whose reservation is still open."""
    query = (
        select(models.Payout.id, models.Payout.reservation_id, models.Payout.status, models.Payout.debit)
        .join(models.Reservation, models.Reservation.id == models.Payout.reservation_id)
        .where(models.Payout.status.in_(statuses), models.Reservation.state == "open")
        .order_by(models.Payout.id)
        .limit(limit)
    )
    async with db.read() as session:
        return [
            ReservationLag(r[0], int(r[1] or 0), r[2], r[3]) for r in (await session.execute(query)).all()
        ]


async def orphan_reservations(db: Database, *, created_before: datetime, limit: int = 100) -> list[int]:
    """Open payout reservations that no payout refers to (the approval that took one died before it
    linked it), older than `created_before`."""
    linked = select(models.Payout.reservation_id).where(models.Payout.reservation_id.is_not(None))
    query = (
        select(models.Reservation.id)
        .where(
            models.Reservation.kind == "payout",
            models.Reservation.state == "open",
            models.Reservation.created_at < created_before,
            models.Reservation.id.not_in(linked),
        )
        .order_by(models.Reservation.id)
        .limit(limit)
    )
    async with db.read() as session:
        return list((await session.scalars(query)).all())


# -- on-chain batches ------------------------------------------------------------------------------


def insert_batch(session: AsyncSession, *, now: datetime, claimed_until: datetime) -> models.PayoutBatch:
    row = models.PayoutBatch(
        state=PayoutBatchState.BUILDING, confirmations=0, created_at=now, claimed_until=claimed_until
    )
    session.add(row)
    return row


async def lock_batch(session: AsyncSession, batch_id: int) -> models.PayoutBatch | None:
    query = select(models.PayoutBatch).where(models.PayoutBatch.id == batch_id).with_for_update()
    return (await session.scalars(query)).one_or_none()


async def lock_batch_payouts(session: AsyncSession, batch_id: int) -> list[models.Payout]:
    query = (
        select(models.Payout)
        .where(models.Payout.batch_id == batch_id)
        .order_by(models.Payout.id)
        .with_for_update()
    )
    return list((await session.scalars(query)).all())


def batch_signed(
    row: models.PayoutBatch,
    *,
    txid: str,
    tx_hex: str,
    fee_sat: int,
    inputs: Sequence[tuple[str, int]],
    now: datetime,
) -> None:
    row.state = PayoutBatchState.SIGNED
    row.txid = txid
    row.tx_hex = tx_hex
    row.fee_sat = fee_sat
    row.inputs = [[txid_, vout] for txid_, vout in inputs]
    row.signed_at = now


async def find_batch(db: Database, batch_id: int) -> BatchRecord | None:
    async with db.read() as session:
        row = await session.get(models.PayoutBatch, batch_id)
        return None if row is None else _batch(row)


async def batches(
    db: Database,
    *,
    states: Sequence[PayoutBatchState],
    claim_over_at: datetime | None = None,
    limit: int = 50,
) -> list[BatchRecord]:
    """Batches in `states`, oldest first; with `claim_over_at`, only those no batcher holds any more."""
    query = select(models.PayoutBatch).where(models.PayoutBatch.state.in_(states))
    if claim_over_at is not None:
        query = query.where(
            or_(
                models.PayoutBatch.claimed_until.is_(None),
                models.PayoutBatch.claimed_until <= claim_over_at,
            )
        )
    async with db.read() as session:
        rows = (await session.scalars(query.order_by(models.PayoutBatch.id).limit(limit))).all()
        return [_batch(row) for row in rows]


async def batch_payout_ids(db: Database, batch_id: int) -> list[int]:
    query = select(models.Payout.id).where(models.Payout.batch_id == batch_id).order_by(models.Payout.id)
    async with db.read() as session:
        return list((await session.scalars(query)).all())


async def batches_awaiting_confirmation(db: Database, *, limit: int = 50) -> list[BatchRecord]:
    """Broadcast batches that still have SENT (unconfirmed) payouts."""
    pending = select(models.Payout.batch_id).where(models.Payout.status == "SENT")
    query = (
        select(models.PayoutBatch)
        .where(models.PayoutBatch.state == PayoutBatchState.BROADCAST, models.PayoutBatch.id.in_(pending))
        .order_by(models.PayoutBatch.id)
        .limit(limit)
    )
    async with db.read() as session:
        return [_batch(row) for row in (await session.scalars(query)).all()]


# -- LNURL-withdraw ------------------------------------------------------------------------------


def insert_lnurl(
    session: AsyncSession,
    *,
    pointer_id: int,
    k1_hash: str,
    rate: str,
    min_msat: int,
    max_msat: int,
    now: datetime,
    expires_at: datetime,
) -> None:
    session.add(
        models.LnurlWithdrawal(
            pointer_id=pointer_id,
            k1_hash=k1_hash,
            rate=rate,
            min_msat=min_msat,
            max_msat=max_msat,
            created_at=now,
            expires_at=expires_at,
        )
    )


async def lock_lnurl(session: AsyncSession, k1_hash: str) -> models.LnurlWithdrawal | None:
    query = select(models.LnurlWithdrawal).where(models.LnurlWithdrawal.k1_hash == k1_hash).with_for_update()
    return (await session.scalars(query)).one_or_none()


async def set_lnurl_payout(session: AsyncSession, lnurl_id: int, payout_id: int) -> None:
    row = await session.get_one(models.LnurlWithdrawal, lnurl_id, with_for_update=True)
    row.payout_id = payout_id


def lnurl_record(row: models.LnurlWithdrawal) -> LnurlRecord:
    return LnurlRecord(
        row.id,
        row.pointer_id,
        row.rate,
        row.min_msat,
        row.max_msat,
        row.expires_at,
        row.used_at,
        row.payout_id,
    )


# -- records ---------------------------------------------------------------------------------------


def _record(row: models.Payout, batch: models.PayoutBatch | None) -> PayoutRecord:
    return PayoutRecord(
        id=row.id,
        public_id=row.public_id,
        pointer_id=row.pointer_id,
        account_id=row.account_id,
        created_by=row.created_by,
        rail=row.rail,
        destination=row.destination,
        address=row.address,
        script_pubkey=row.script_pubkey,
        invoice=row.invoice,
        payment_hash=row.payment_hash,
        amount_side=row.amount_side,
        transfer_msat=row.transfer_msat,
        fee_msat=row.fee_msat,
        debit=row.debit,
        asset_code=row.asset_code,
        asset_scale=row.asset_scale,
        rate=row.rate,
        status=row.status,
        reservation_id=row.reservation_id,
        batch_id=row.batch_id,
        vout=row.vout,
        attempts=row.attempts,
        claimed_until=row.claimed_until,
        preimage=row.preimage,
        routing_fee_msat=row.routing_fee_msat,
        failure_reason=row.failure_reason,
        approved_by=row.approved_by,
        notification_url=row.notification_url,
        comment=row.comment,
        metadata=row.metadata_json,
        created_at=row.created_at,
        expires_at=row.expires_at,
        approved_at=row.approved_at,
        sent_at=row.sent_at,
        confirmed_at=row.confirmed_at,
        txid=None
        if batch is None
        or batch.state in (PayoutBatchState.BUILDING, PayoutBatchState.ABANDONED, PayoutBatchState.REJECTED)
        else batch.txid,
        confirmations=None
        if batch is None or batch.state != PayoutBatchState.BROADCAST
        else batch.confirmations,
    )


def _batch(row: models.PayoutBatch) -> BatchRecord:
    inputs = tuple((str(item[0]), int(str(item[1]))) for item in row.inputs or [])
    return BatchRecord(
        row.id,
        row.state,
        row.txid,
        row.tx_hex,
        row.fee_sat,
        inputs,
        row.confirmations,
        row.created_at,
        row.claimed_until,
        row.broadcast_at,
    )
