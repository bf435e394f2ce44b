"""Payout transitions as transactions: lock the row, let `states` decide, write the status, its audit
event and its notification in one commit, then settle or release the reservation.

The order of writes is what makes crashes harmless. A reservation is taken before the payout links it
(an orphan is released by the reconciler); a status is written before its reservation is closed (a
lagging reservation is closed by the reconciler); nothing is ever released before the payout's status
says that nothing left.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from spsp_pull.bridge.settings import PAYOUT_LEASE
from spsp_pull.bridge.states import (
    TERMINAL,
    Effect,
    Trigger,
    advance,
    can,
    reservation_for,
)
from spsp_pull.bridge.views import payout_view
from spsp_pull.domain import events
from spsp_pull.domain.agreement import Version, paused
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.pull_refusal import paused_refusal
from spsp_pull.domain.states import PayoutBatchState, PayoutStatus, ReservationKind, ReservationState
from spsp_pull.store import allowance_low, models, pointers, reservations
from spsp_pull.store import payouts as store
from spsp_pull.store.database import Database, after_commit
from spsp_pull.store.outbox import enqueue
from spsp_pull.store.payouts import NewPayout, PayoutRecord

log = logging.getLogger(__name__)
Changes = Callable[[models.Payout], None]
Guard = Callable[[models.Payout], bool]


def unbatched(row: models.Payout) -> bool:
    return row.batch_id is None


def seen(record: PayoutRecord) -> Guard:
    """The row is still as `record` showed it: same status, same dispatch attempt."""

    def same(row: models.Payout) -> bool:
        return row.status == record.status and row.attempts == record.attempts

    return same


class PayoutConflict(InputError):
    """The payout is not in a state that allows this (HTTP 409)."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(code, detail, status=409)


_EVENT_OF_STATUS = {PayoutStatus.NEW: events.PAYOUT_CREATED, PayoutStatus.QUEUED: events.PAYOUT_APPROVED}


def payout_event(status: PayoutStatus) -> str:
    """The event a payout entering `status` is announced by: `payout.created` (an offer), `payout.approved`
    (queued), else `payout.<status>` (`payout.sent`, `payout.failed`, `payout.in_flight`, ...)."""
    return _EVENT_OF_STATUS.get(status, f"payout.{status.lower()}")


def refuse_if_paused(version: Version, now: datetime) -> None:
    """A paused pointer pays nothing out: 'pointer-paused', with the pull refusal's words."""
    if paused(version, now):
        raise PayoutConflict("pointer-paused", paused_refusal(version, now).message)


@dataclass
class _Effects:
    """Reservation work to do once the transaction has committed."""

    items: list[tuple[int, int, Effect, int]] = field(default_factory=list)

    def add(self, row: models.Payout, effect: Effect) -> None:
        if effect in (Effect.SETTLE, Effect.RELEASE) and row.reservation_id is not None:
            self.items.append((row.id, row.reservation_id, effect, row.debit))


class PayoutLedger:
    def __init__(self, db: Database) -> None:
        self._db = db

    # -- offers ------------------------------------------------------------------------------------

    async def create(self, spec: NewPayout, *, now: datetime) -> PayoutRecord:
        """Store an offer (`NEW`); a live payout of the same invoice makes it `duplicate-destination`."""
        try:
            async with self._db.write() as session:
                row = store.insert_payout(session, spec, status=PayoutStatus.NEW, now=now)
                after_commit(session, lambda: self._db.metrics.payout_entered(PayoutStatus.NEW))
                await session.flush()
                detail: dict[str, object] = {
                    "debit": str(spec.debit),
                    "transferMsat": str(spec.transfer_msat),
                    "feeMsat": str(spec.fee_msat),
                    "rate": spec.rate,
                }
                store.add_event(session, row.id, now=now, kind="created", to_status=row.status, detail=detail)
                result = await store.record(session, row)
                await self._notify(session, row, result, now)
                return result
        except IntegrityError:
            raise PayoutConflict(
                "duplicate-destination", "Another payout of this invoice is pending or already paid."
            ) from None

    async def approve(self, payout_id: int, *, by: str, now: datetime) -> PayoutRecord:
        """NEW -> QUEUED with the debit reserved against the pointer's allowance, before the offer
        expires; otherwise an error and nothing changed."""
        current = await self._find(payout_id)
        self._check_approvable(current, now)
        grant = await reservations.reserve(
            self._db,
            current.pointer_id,
            current.debit,
            kind=ReservationKind.PAYOUT,
            now=now,
            lease=PAYOUT_LEASE,
            minimum=current.debit,
        )
        if grant is None:
            pointer = await pointers.find_by_id(self._db, current.pointer_id)
            if pointer is not None:
                refuse_if_paused(pointer.version, now)
            raise PayoutConflict("overdraft", "The pointer's available allowance does not cover this payout.")
        linked = False
        try:
            async with self._db.write() as session:
                row = await self._lock(session, payout_id)
                self._check_approvable(await store.record(session, row), now)
                row.reservation_id = grant.reservation_id
                row.approved_at = now
                row.approved_by = by
                self._apply(session, row, Trigger.APPROVE, now, detail={"by": by})
                result = await store.record(session, row)
                await self._notify(session, row, result, now)
            linked = True
            return result
        finally:
            if not linked:
                await reservations.release(self._db, grant.reservation_id, now=now)

    def _check_approvable(self, record: PayoutRecord, now: datetime) -> None:
        if record.status == PayoutStatus.NEW and now >= record.expires_at:
            raise PayoutConflict("offer-expired", "The offer expired; request a new payout.")
        if not can(PayoutStatus(record.status), Trigger.APPROVE):
            raise PayoutConflict("invalid-state", f"A {record.status} payout cannot be approved.")

    async def cancel(self, payout_id: int, *, by: str, now: datetime) -> PayoutRecord:
        """NEW or QUEUED (and not yet taken into a batch) -> CANCELLED, the reservation released."""
        effects = _Effects()
        async with self._db.write() as session:
            row = await self._lock(session, payout_id)
            status = PayoutStatus(row.status)
            if row.batch_id is not None:
                raise PayoutConflict(
                    "invalid-state", "The payout is being sent and can no longer be cancelled."
                )
            if not can(status, Trigger.CANCEL):
                raise PayoutConflict("invalid-state", f"A {status} payout cannot be cancelled.")
            effects.add(row, self._apply(session, row, Trigger.CANCEL, now, detail={"by": by}))
            result = await store.record(session, row)
            await self._notify(session, row, result, now)
        await self._close_reservations(effects, now)
        return result

    # -- generic transitions -----------------------------------------------------------------------

    async def transition(
        self,
        payout_id: int,
        trigger: Trigger,
        *,
        now: datetime,
        kind: str | None = None,
        detail: dict[str, object] | None = None,
        changes: Changes | None = None,
        guard: Guard | None = None,
    ) -> PayoutRecord | None:
        """Apply `trigger` if the payout's current status allows it and `guard` (checked on the locked
        row) holds; None if not (another worker got there first, or what the caller saw is stale).
        `changes` sets fields of the row in the same commit."""
        effects = _Effects()
        async with self._db.write() as session:
            row = await self._lock(session, payout_id)
            if not can(PayoutStatus(row.status), trigger) or (guard is not None and not guard(row)):
                return None
            if changes is not None:
                changes(row)
            effects.add(row, self._apply(session, row, trigger, now, kind=kind, detail=detail))
            result = await store.record(session, row)
            await self._notify(session, row, result, now)
        await self._close_reservations(effects, now)
        return result

    async def note(self, payout_id: int, *, now: datetime, kind: str, detail: dict[str, object]) -> None:
        """An audit event that changes nothing (e.g. an outcome the backend could not tell yet)."""
        async with self._db.write() as session:
            store.add_event(session, payout_id, now=now, kind=kind, detail=detail)

    # -- on-chain batches --------------------------------------------------------------------------

    async def claim_batch(
        self, *, now: datetime, claim_until: datetime, limit: int
    ) -> tuple[int, list[PayoutRecord]] | None:
        """Take the oldest queued on-chain payouts into a new batch (cancel refuses them from now on)."""
        async with self._db.write() as session:
            rows = await store.lock_next_queued(session, rail="onchain", now=now, limit=limit)
            if not rows:
                return None
            batch = store.insert_batch(session, now=now, claimed_until=claim_until)
            await session.flush()
            for row in rows:
                row.batch_id = batch.id
                store.add_event(session, row.id, now=now, kind="batched", detail={"batch": batch.id})
            return batch.id, [await store.record(session, row) for row in rows]

    async def abandon_batch(
        self, batch_id: int, *, now: datetime, reason: str, payout_ids: Sequence[int] | None = None
    ) -> None:
        """Payouts of a batch that was never signed stay queued for the next window: `payout_ids` of
        them, or all of them (and the batch is abandoned)."""
        async with self._db.write() as session:
            batch = await store.lock_batch(session, batch_id)
            if batch is None or batch.state != PayoutBatchState.BUILDING:
                return
            if payout_ids is None:
                batch.state = PayoutBatchState.ABANDONED
            for row in await store.lock_batch_payouts(session, batch_id):
                if payout_ids is None or row.id in payout_ids:
                    row.batch_id = None
                    store.add_event(session, row.id, now=now, kind="unbatched", detail={"reason": reason})

    async def record_signed(
        self,
        batch_id: int,
        *,
        txid: str,
        tx_hex: str,
        fee_sat: int,
        inputs: Sequence[tuple[str, int]],
        vouts: dict[int, int],
        now: datetime,
    ) -> bool:
        """Store the signed transaction and move its payouts to IN_FLIGHT, in one commit, before any
        broadcast. False if the batch was abandoned meanwhile (then it must never be broadcast)."""
        async with self._db.write() as session:
            batch = await store.lock_batch(session, batch_id)
            if batch is None or batch.state != PayoutBatchState.BUILDING:
                return False
            store.batch_signed(batch, txid=txid, tx_hex=tx_hex, fee_sat=fee_sat, inputs=inputs, now=now)
            for row in await store.lock_batch_payouts(session, batch_id):
                row.vout = vouts[row.id]
                row.attempts += 1
                detail: dict[str, object] = {"batch": batch_id, "txid": txid, "vout": row.vout}
                self._apply(session, row, Trigger.DISPATCH, now, kind="dispatched", detail=detail)
                await self._notify(session, row, await store.record(session, row), now)
        return True

    async def batch_sent(self, batch_id: int, *, now: datetime) -> list[int]:
        """The transaction is in the mempool or a block: its payouts are SENT and their debits settled."""
        effects = _Effects()
        async with self._db.write() as session:
            batch = await store.lock_batch(session, batch_id)
            if batch is None or batch.state not in (PayoutBatchState.SIGNED, PayoutBatchState.BROADCAST):
                return []
            if batch.state == PayoutBatchState.SIGNED:
                batch.state = PayoutBatchState.BROADCAST
                batch.broadcast_at = now
            for row in await store.lock_batch_payouts(session, batch_id):
                if row.status != PayoutStatus.IN_FLIGHT:
                    continue
                row.sent_at = now
                detail: dict[str, object] = {"txid": batch.txid, "vout": row.vout}
                effects.add(row, self._apply(session, row, Trigger.SEND, now, kind="sent", detail=detail))
                await self._notify(session, row, await store.record(session, row), now)
        await self._close_reservations(effects, now)
        return [item[0] for item in effects.items]

    async def batch_rejected(self, batch_id: int, *, now: datetime, reason: str, max_attempts: int) -> None:
        """The node refused the transaction and never broadcast it: its payouts go back to the queue
        (or fail, after `max_attempts` dispatches), their reservations held or released."""
        effects = _Effects()
        async with self._db.write() as session:
            batch = await store.lock_batch(session, batch_id)
            if batch is None or batch.state != PayoutBatchState.SIGNED:
                return
            batch.state = PayoutBatchState.REJECTED
            for row in await store.lock_batch_payouts(session, batch_id):
                if row.status != PayoutStatus.IN_FLIGHT:
                    continue
                trigger = Trigger.FAIL if row.attempts >= max_attempts else Trigger.REQUEUE
                row.batch_id, row.vout = None, None
                if trigger is Trigger.FAIL:
                    row.failure_reason = f"broadcast rejected: {reason}"
                detail: dict[str, object] = {"batch": batch_id, "txid": batch.txid, "reason": reason}
                effects.add(
                    row, self._apply(session, row, trigger, now, kind="broadcast-rejected", detail=detail)
                )
                await self._notify(session, row, await store.record(session, row), now)
        await self._close_reservations(effects, now)

    async def batch_confirmations(
        self, batch_id: int, confirmations: int, *, now: datetime, needed: int
    ) -> None:
        """Record the batch's confirmations; at `needed` its payouts are CONFIRMED."""
        async with self._db.write() as session:
            batch = await store.lock_batch(session, batch_id)
            if batch is None or batch.state != PayoutBatchState.BROADCAST:
                return
            was = batch.confirmations
            batch.confirmations = confirmations
            rows = await store.lock_batch_payouts(session, batch_id)
            if confirmations < 0 <= was:
                for row in rows:
                    detail: dict[str, object] = {"txid": batch.txid, "confirmations": confirmations}
                    store.add_event(session, row.id, now=now, kind="conflicted", detail=detail)
                log.error("payout batch %d (%s) is conflicted: check the wallet", batch_id, batch.txid)
            if confirmations < needed:
                return
            for row in rows:
                if row.status == PayoutStatus.SENT:
                    row.confirmed_at = now
                    detail = {"txid": batch.txid, "confirmations": confirmations}
                    self._apply(session, row, Trigger.CONFIRM, now, kind="confirmed", detail=detail)
                    await self._notify(session, row, await store.record(session, row), now)

    # -- reservations that lag behind their payout -------------------------------------------------

    async def close_lagging_reservations(self, *, now: datetime) -> int:
        """Settle or release open reservations of payouts whose status says they are done with."""
        effects = _Effects()
        done = [s.value for s in PayoutStatus if reservation_for(s) in _CLOSED]
        for lag in await store.reservation_lags(self._db, statuses=done):
            status = PayoutStatus(lag.status)
            effect = Effect.SETTLE if reservation_for(status) is ReservationState.SETTLED else Effect.RELEASE
            effects.items.append((lag.payout_id, lag.reservation_id, effect, lag.debit))
        await self._close_reservations(effects, now)
        return len(effects.items)

    async def release_orphans(self, *, now: datetime, created_before: datetime) -> int:
        released = 0
        for reservation_id in await store.orphan_reservations(self._db, created_before=created_before):
            with contextlib.suppress(reservations.ReservationClosed):
                await reservations.release(self._db, reservation_id, now=now)
                released += 1
                log.warning("released payout reservation %d that no payout holds", reservation_id)
        return released

    # -- helpers -----------------------------------------------------------------------------------

    async def _find(self, payout_id: int) -> PayoutRecord:
        found = await store.find_payout(self._db, payout_id=payout_id)
        if found is None:
            raise InputError("payout-not-found", "No such payout.", status=404)
        return found

    async def _lock(self, session: AsyncSession, payout_id: int) -> models.Payout:
        row = await store.lock_payout(session, payout_id)
        if row is None:
            raise InputError("payout-not-found", "No such payout.", status=404)
        return row

    def _apply(
        self,
        session: AsyncSession,
        row: models.Payout,
        trigger: Trigger,
        now: datetime,
        *,
        kind: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> Effect:
        transition = advance(PayoutStatus(row.status), trigger)
        target = transition.target
        after_commit(session, lambda: self._db.metrics.payout_entered(target))
        store.set_status(
            row,
            target,
            now=now,
            live=target not in (PayoutStatus.EXPIRED, PayoutStatus.CANCELLED, PayoutStatus.FAILED),
            final=target in TERMINAL,
        )
        if target is PayoutStatus.QUEUED and trigger is Trigger.REQUEUE:
            row.claimed_until = None
        store.add_event(
            session,
            row.id,
            now=now,
            kind=kind or trigger.value,
            from_status=transition.source,
            to_status=target,
            detail=detail,
        )
        return transition.effect

    async def _notify(
        self, session: AsyncSession, row: models.Payout, record: PayoutRecord, now: datetime
    ) -> None:
        """Announce the payout's state to its `notificationUrl` (signed with the payout's own secret) and to
        its pointer's webhook (the payer's, signed with the account's)."""
        event = payout_event(PayoutStatus(record.status))
        data: dict[str, object] = {"payout": payout_view(record)}
        if row.notification_url:
            enqueue(
                session,
                url=row.notification_url,
                event=event,
                body=data,
                now=now,
                account_id=row.account_id,
                pointer_id=row.pointer_id,
                payout_id=row.id,
            )
        pointer = await session.get_one(models.Pointer, row.pointer_id)
        if pointer.webhook:
            enqueue(
                session,
                url=pointer.webhook,
                event=event,
                body={**data, "token": pointer.token},
                now=now,
                account_id=pointer.account_id,
                pointer_id=pointer.id,
            )

    async def _close_reservations(self, effects: _Effects, now: datetime) -> None:
        for payout_id, reservation_id, effect, debit in effects.items:
            try:
                if effect is Effect.SETTLE:
                    settled = await reservations.settle(self._db, reservation_id, debit, now=now)
                    await allowance_low.warn_if_low(self._db, settled.pointer_id, now=now)
                else:
                    await reservations.release(self._db, reservation_id, now=now)
            except reservations.ReservationClosed:
                continue
            kind = "reservation-settled" if effect is Effect.SETTLE else "reservation-released"
            detail: dict[str, object] = {"reservation": reservation_id}
            if effect is Effect.SETTLE:
                detail["debit"] = str(debit)
            await self.note(payout_id, now=now, kind=kind, detail=detail)


_CLOSED = (ReservationState.SETTLED, ReservationState.RELEASED)
