"""The atomic reservation: no value leaves without allowance held for it first.

`reserve` locks the pointer row, computes what is available now and holds up to that much in one
transaction, so concurrent pulls and payouts — across tasks, processes and instances — can never together
hold more than the agreement allows. `settle` records what actually left and gives the rest back; `release`
gives all of it back. A reservation whose owner died is closed by `recover_expired` once its lease has run
out: it is debited in full, because some of it may have been delivered and nobody can prove otherwise.

Lock order, in every transaction here: the pointer rows first (in id order), then their reservation rows (in
id order). A path taking them the other way round would deadlock with one taking them this way.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar, cast

from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from spsp_pull.domain.agreement import Usage, balance, current_cycle
from spsp_pull.domain.states import PullKind, ReservationKind, ReservationState
from spsp_pull.store import models, sender_lease
from spsp_pull.store.database import Database
from spsp_pull.store.outbox import enqueue, enqueue_raw
from spsp_pull.store.pointers import PointerNotFound, lock_pointer
from spsp_pull.store.raw_write import RawWrite
from spsp_pull.store.records import PointerRecord, apply_usage, pointer_reader, pointer_record

WebhookBody = Callable[[PointerRecord, datetime], dict[str, object]]


@dataclass(frozen=True, slots=True)
class Grant:
    """Allowance held for one sender until `lease_until`."""

    reservation_id: int
    pointer_id: int
    amount: int
    cycle: int
    lease_until: datetime


@dataclass(frozen=True, slots=True)
class Settlement:
    reservation_id: int
    pointer_id: int
    sent: int
    returned: int


class ReservationClosed(RuntimeError):
    """The reservation was already settled, released or recovered."""


class SenderBusy(RuntimeError):
    """Another stream holds the pointer's sender lease."""


async def reserve(
    db: Database,
    pointer_id: int,
    want: int,
    *,
    kind: ReservationKind,
    now: datetime,
    lease: timedelta,
    minimum: int = 1,
) -> Grant | None:
    """Hold `min(want, available)` against the pointer; None when less than `minimum` is available."""
    if want < minimum or minimum < 1:
        return None
    async with db.write() as session:
        grant = await _reserve_in(session, pointer_id, want, kind=kind, now=now, lease=lease, minimum=minimum)
    db.metrics.reservations("made", int(grant is not None))
    return grant


async def settle_and_reserve(
    db: Database,
    settle_first: Sequence[tuple[int, int]],
    pointer_id: int,
    want: int,
    *,
    kind: ReservationKind,
    now: datetime,
    lease: timedelta,
    sender: tuple[str, timedelta] | None = None,
) -> tuple[list[Settlement], Grant | None]:
    """`settle` each `(reservation_id, sent)` of `settle_first`, then `reserve` on `pointer_id`, in one
    transaction (a pull that goes on settles what it used up and holds the next chunk in one write). With
    `sender=(holder, ttl)` it takes or extends the pointer's sender lease first.

    All or nothing: a reservation in `settle_first` that is already closed raises `ReservationClosed`, a
    lease another holder has raises `SenderBusy`, and nothing is settled or reserved. The pull's hot path:
    its statements go straight to the driver (`Database.raw_write`)."""
    async with db.raw_write() as tx:
        if sender is not None and not await sender_lease.acquire_in(
            tx, pointer_id, sender[0], now=now, ttl=sender[1]
        ):
            raise SenderBusy(str(pointer_id))
        settled = await _close_raw(tx, settle_first, now=now, notify=None)
        grant = (
            await _reserve_raw(tx, pointer_id, want, kind=kind, now=now, lease=lease) if want >= 1 else None
        )
    db.metrics.reservations("settled", len(settled))
    db.metrics.reservations("made", int(grant is not None))
    return settled, grant


async def settle_all(
    db: Database,
    shares: Sequence[tuple[int, int]],
    *,
    now: datetime,
    notify: WebhookBody | None = None,
    release_sender: tuple[int, str] | None = None,
) -> list[Settlement]:
    """`settle` each `(reservation_id, sent)` in one transaction (the end of a pull); `notify` goes with the
    last one. With `release_sender=(pointer_id, holder)` the pull's sender lease is released in it too.

    All or nothing, as `settle_and_reserve` (and, like it, on the driver itself)."""
    async with db.raw_write() as tx:
        settled = await _close_raw(tx, shares, now=now, notify=notify)
        if release_sender is not None:
            await sender_lease.release_in(tx, *release_sender)
    db.metrics.reservations("settled", len(settled))
    return settled


_POINTERS = cast(Table, models.Pointer.__table__)


async def announce_pull(
    db: Database,
    pointer_id: int,
    notify: WebhookBody,
    *,
    now: datetime,
    release_sender: tuple[int, str] | None = None,
) -> None:
    """Announce a pull that has no grant left to settle with it (they were settled on the way: re-chunked,
    or one by one after one of them was recovered), with the release of its sender lease if given: one
    transaction."""
    async with db.raw_write() as tx:
        record = await tx.select_one(_POINTERS, "id", pointer_id, pointer_reader)
        if record is None:
            raise PointerNotFound(str(pointer_id))
        await _announce_raw(tx, pointer_id, record, notify, now)
        if release_sender is not None:
            await sender_lease.release_in(tx, *release_sender)


async def _announce_raw(
    tx: RawWrite, pointer_id: int, record: PointerRecord, notify: WebhookBody, now: datetime
) -> None:
    """The pull.completed message to the pointer's webhook (none without one), its body as of `record`."""
    if record.webhook:
        await enqueue_raw(
            tx,
            url=record.webhook,
            event="pull.completed",
            body=notify(record, now),
            now=now,
            account_id=record.account_id,
            pointer_id=pointer_id,
        )


async def _reserve_raw(
    tx: RawWrite, pointer_id: int, want: int, *, kind: ReservationKind, now: datetime, lease: timedelta
) -> Grant | None:
    """`_reserve_in` on the driver."""
    record = await tx.select_one(_POINTERS, "id", pointer_id, pointer_reader, lock=True)
    if record is None:
        raise PointerNotFound(str(pointer_id))
    held = _held(record, want, now, minimum=1)
    if held is None:
        return None
    amount, cycle, usage = held
    await _store_usage(tx, pointer_id, usage, record.reserved_total + amount)
    lease_until = now + lease
    row = await tx.fetchrow(
        "INSERT INTO reservations (pointer_id, amount, kind, version, cycle, state, settled, created_at,"
        " lease_until) VALUES (:pointer_id, :amount, :kind, :version, :cycle, 'open', :zero, :now, :until)"
        " RETURNING id",
        pointer_id=pointer_id,
        amount=tx.amount(amount),
        kind=kind,
        version=record.version.number,
        cycle=cycle,
        zero=tx.amount(0),
        now=tx.time(now),
        until=tx.time(lease_until),
    )
    assert row is not None
    return Grant(int(row[0]), pointer_id, amount, cycle, lease_until)


async def _store_usage(tx: RawWrite, pointer_id: int, usage: Usage, reserved_total: int) -> None:
    await tx.execute(
        "UPDATE pointers SET pulled_total = :pulled, used_since_anchor = :since_anchor,"
        " used_in_cycle = :in_cycle, usage_cycle = :cycle, reserved_total = :reserved WHERE id = :id",
        pulled=tx.amount(usage.pulled_total),
        since_anchor=tx.amount(usage.used_since_anchor),
        in_cycle=tx.amount(usage.used_in_cycle),
        cycle=usage.cycle,
        reserved=tx.amount(reserved_total),
        id=pointer_id,
    )


async def _close_raw(
    tx: RawWrite, shares: Sequence[tuple[int, int]], *, now: datetime, notify: WebhookBody | None
) -> list[Settlement]:
    """Settle `shares` (`_lock_open` and `_close_locked` on the driver): the pointers locked by id, then the
    reservations by id; `ReservationClosed` if one is not open. `notify` goes with the last share."""
    if not shares:
        return []
    wanted = sorted({reservation_id for reservation_id, _ in shares})
    pointer_ids = set()
    for reservation_id in wanted:
        row = await tx.fetchrow("SELECT pointer_id FROM reservations WHERE id = :id", id=reservation_id)
        if row is None:
            raise ReservationClosed(str(reservation_id))
        pointer_ids.add(int(row[0]))
    records: dict[int, PointerRecord] = {}
    for pointer_id in sorted(pointer_ids):
        record = await tx.select_one(_POINTERS, "id", pointer_id, pointer_reader, lock=True)
        assert record is not None  # a reservation's pointer is never deleted
        records[pointer_id] = record
    open_: dict[int, tuple[int, int, str, int]] = {}
    for reservation_id in wanted:
        row = await tx.fetchrow(
            "SELECT pointer_id, amount, kind, cycle, state FROM reservations WHERE id = :id",
            lock=True,
            id=reservation_id,
        )
        if row is None or row[4] != "open":
            raise ReservationClosed(str(reservation_id))
        open_[reservation_id] = (int(row[0]), int(row[1]), str(row[2]), int(row[3]))
    settled = []
    for i, (reservation_id, sent) in enumerate(shares):
        if reservation_id not in open_:  # named twice
            raise ReservationClosed(str(reservation_id))
        pointer_id, amount, kind, cycle = open_.pop(reservation_id)
        if not 0 <= sent <= amount:
            raise ValueError(f"settled {sent} outside the reservation of {amount}")
        record = records[pointer_id]
        usage = _settled_usage(record, amount, cycle, sent)
        record = records[pointer_id] = replace(
            record, usage=usage, reserved_total=record.reserved_total - amount
        )
        await tx.execute(
            "UPDATE reservations SET state = 'settled', settled = :sent, closed_at = :now WHERE id = :id",
            sent=tx.amount(sent),
            now=tx.time(now),
            id=reservation_id,
        )
        if sent:
            await tx.execute(
                "INSERT INTO pulls (pointer_id, reservation_id, amount, kind, cycle, created_at)"
                " VALUES (:pointer_id, :reservation_id, :amount, :kind, :cycle, :now)",
                pointer_id=pointer_id,
                reservation_id=reservation_id,
                amount=tx.amount(sent),
                kind=kind,
                cycle=cycle,
                now=tx.time(now),
            )
        if notify is not None and i == len(shares) - 1:
            await _announce_raw(tx, pointer_id, record, notify, now)
        settled.append(Settlement(reservation_id, pointer_id, sent, amount - sent))
    for pointer_id in pointer_ids:
        record = records[pointer_id]
        await _store_usage(tx, pointer_id, record.usage, record.reserved_total)
    return settled


def _held(record: PointerRecord, want: int, now: datetime, *, minimum: int) -> tuple[int, int, Usage] | None:
    """What a reservation of `want` holds on the pointer `record` now: (amount, cycle, usage after it);
    None when less than `minimum` is available."""
    available = balance(record.version, record.usage, now, record.cancelled_at).available
    amount = min(want, available)
    if amount < minimum:
        return None
    cycle = current_cycle(record.version, now)
    usage = record.usage
    usage = replace(
        usage,
        used_since_anchor=usage.used_since_anchor + amount,
        used_in_cycle=usage.in_cycle(cycle) + amount,
        cycle=cycle,
    )
    return amount, cycle, usage


def _settled_usage(record: PointerRecord, amount: int, cycle: int, sent: int) -> Usage:
    """The pointer's usage once a reservation of `amount` made in `cycle` settles with `sent`.

    The unused part goes back only to the counters that still include it: a revision since the reservation
    may have moved the anchor past it (then it stays counted, in the payer's favour)."""
    returned = amount - sent
    usage = record.usage
    return replace(
        usage,
        pulled_total=usage.pulled_total + sent,
        used_since_anchor=usage.used_since_anchor - (returned if cycle >= record.version.base_cycle else 0),
        used_in_cycle=usage.used_in_cycle - (returned if cycle == usage.cycle else 0),
    )


async def _reserve_in(
    session: AsyncSession,
    pointer_id: int,
    want: int,
    *,
    kind: ReservationKind,
    now: datetime,
    lease: timedelta,
    minimum: int,
) -> Grant | None:
    row = await lock_pointer(session, models.Pointer.id == pointer_id)
    if row is None:
        raise PointerNotFound(str(pointer_id))
    record = pointer_record(row)
    held = _held(record, want, now, minimum=minimum)
    if held is None:
        return None
    amount, cycle, usage = held
    apply_usage(row, usage)
    row.reserved_total = record.reserved_total + amount
    reservation = models.Reservation(
        pointer_id=pointer_id,
        amount=amount,
        kind=kind,
        version=record.version.number,
        cycle=cycle,
        state=ReservationState.OPEN,
        settled=0,
        created_at=now,
        lease_until=now + lease,
        closed_at=None,
    )
    session.add(reservation)
    await session.flush()
    return Grant(reservation.id, pointer_id, amount, cycle, reservation.lease_until)


async def settle(
    db: Database,
    reservation_id: int,
    sent: int,
    *,
    now: datetime,
    notify: WebhookBody | None = None,
) -> Settlement:
    """Close a reservation: `sent` left (recorded in the ledger), the rest returns to the allowance.

    With `notify`, a completed pull is announced to the pointer's webhook (if it has one) through the outbox,
    in the same transaction as the ledger entry."""
    return await _close(
        db, reservation_id, sent, now=now, state=ReservationState.SETTLED, kind=None, notify=notify
    )


async def release(db: Database, reservation_id: int, *, now: datetime) -> Settlement:
    return await _close(
        db, reservation_id, 0, now=now, state=ReservationState.RELEASED, kind=None, notify=None
    )


async def extend_leases(db: Database, reservation_ids: Sequence[int], *, until: datetime) -> None:
    """Keep open reservations from being recovered until `until`: their owner is alive and still waiting
    (for Prepares in flight). `ReservationClosed` (and nothing changed) if one is closed already."""
    async with db.write() as session:
        for reservation, _ in (await _lock_open(session, reservation_ids)).values():
            reservation.lease_until = max(reservation.lease_until, until)


async def recover_expired(db: Database, *, now: datetime, limit: int = 100) -> list[Settlement]:
    """Close STREAM reservations whose lease ran out without their owner closing them (it crashed or lost
    its database connection). Nothing can still be in flight for them, but what was delivered is unknown, so
    the whole reservation is debited: the payee may lose a little allowance, the payer never pays twice.
    Payout reservations are not touched: the payout reconciler learns their outcome from the backend."""
    async with db.read() as session:
        ids = (
            await session.scalars(
                select(models.Reservation.id)
                .where(
                    models.Reservation.state == ReservationState.OPEN,
                    models.Reservation.kind == ReservationKind.STREAM,
                    models.Reservation.lease_until < now,
                )
                .order_by(models.Reservation.id)
                .limit(limit)
            )
        ).all()
    recovered = []
    for reservation_id in ids:
        try:
            recovered.append(
                await _close(
                    db,
                    reservation_id,
                    None,
                    now=now,
                    state=ReservationState.RECOVERED,
                    kind=PullKind.RECOVERED,
                    notify=None,
                )
            )
        except ReservationClosed:
            continue
    return recovered


async def open_reservations(db: Database, pointer_id: int) -> list[int]:
    async with db.read() as session:
        return list(
            (
                await session.scalars(
                    select(models.Reservation.id).where(
                        models.Reservation.pointer_id == pointer_id,
                        models.Reservation.state == ReservationState.OPEN,
                    )
                )
            ).all()
        )


async def _close(
    db: Database,
    reservation_id: int,
    sent: int | None,
    *,
    now: datetime,
    state: ReservationState,
    kind: PullKind | None,
    notify: WebhookBody | None,
) -> Settlement:
    async with db.write() as session:
        locked = await _lock_open(session, [reservation_id])
        settlement = _close_locked(
            session, *locked[reservation_id], sent, now=now, state=state, kind=kind, notify=notify
        )
    db.metrics.reservations(state)
    return settlement


async def _lock_open(
    session: AsyncSession, reservation_ids: Sequence[int]
) -> dict[int, tuple[models.Reservation, models.Pointer]]:
    """Lock the open reservations `reservation_ids` and their pointers in the one lock order: the pointer
    rows (by id), then the reservation rows (by id); `ReservationClosed` if one is not open or unknown."""
    if not reservation_ids:
        return {}
    wanted = set(reservation_ids)
    pointer_ids = (
        await session.scalars(
            select(models.Reservation.pointer_id).where(models.Reservation.id.in_(wanted)).distinct()
        )
    ).all()
    pointers = {
        row.id: row for row in await _lock_by_id(session, models.Pointer, models.Pointer.id, pointer_ids)
    }
    rows = await _lock_by_id(session, models.Reservation, models.Reservation.id, wanted)
    found = {
        reservation.id: reservation for reservation in rows if reservation.state == ReservationState.OPEN
    }
    for reservation_id in reservation_ids:
        if reservation_id not in found:
            raise ReservationClosed(str(reservation_id))
    # A reservation never changes pointer, so the pointer read before the lock is the one locked.
    return {rid: (reservation, pointers[reservation.pointer_id]) for rid, reservation in found.items()}


Row = TypeVar("Row", bound=models.Base)


async def _lock_by_id(
    session: AsyncSession, model: type[Row], id_column: InstrumentedAttribute[int], ids: Collection[int]
) -> Sequence[Row]:
    """Lock the rows of `model` whose `id_column` is in `ids`, in id order (the same order in every
    transaction), and read them afresh."""
    query = (
        select(model)
        .where(id_column.in_(ids))
        .order_by(id_column)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return (await session.scalars(query)).all()


def _close_locked(
    session: AsyncSession,
    reservation: models.Reservation,
    row: models.Pointer,
    sent: int | None,
    *,
    now: datetime,
    state: ReservationState,
    kind: PullKind | None,
    notify: WebhookBody | None,
) -> Settlement:
    if reservation.state != ReservationState.OPEN:  # named twice in one batch
        raise ReservationClosed(str(reservation.id))
    amount = reservation.amount
    sent = amount if sent is None else sent
    if not 0 <= sent <= amount:
        raise ValueError(f"settled {sent} outside the reservation of {amount}")
    returned = amount - sent
    record = pointer_record(row)
    usage = _settled_usage(record, amount, reservation.cycle, sent)
    apply_usage(row, usage)
    row.reserved_total = record.reserved_total - amount
    reservation.state = state
    reservation.settled = sent
    reservation.closed_at = now
    if sent:
        session.add(
            models.Pull(
                pointer_id=reservation.pointer_id,
                reservation_id=reservation.id,
                amount=sent,
                kind=kind or PullKind(reservation.kind.value),
                cycle=reservation.cycle,
                created_at=now,
            )
        )
    if notify is not None and row.webhook:
        enqueue(
            session,
            url=row.webhook,
            event="pull.completed",
            body=notify(pointer_record(row), now),
            now=now,
            account_id=row.account_id,
            pointer_id=row.id,
        )
    return Settlement(reservation.id, reservation.pointer_id, sent, returned)
