"""Pull pointers: create, find, revise, cancel, list, and their ledger (versions and pulls)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import cast

from sqlalchemy import Table, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from spsp_pull.domain import events
from spsp_pull.domain.agreement import Changes, Terms, Usage, Version, rebase_usage, resumes_at, revise
from spsp_pull.domain.details_input import KEEP, NO_DETAIL_CHANGES, DetailChanges
from spsp_pull.domain.errors import InputError
from spsp_pull.store import models
from spsp_pull.store.database import Database
from spsp_pull.store.outbox import enqueue, withdraw_scheduled
from spsp_pull.store.records import (
    PointerRecord,
    PullRecord,
    VersionRecord,
    apply_usage,
    apply_version,
    pointer_reader,
    pointer_record,
    version_of,
)


@dataclass(frozen=True, slots=True)
class NewPointer:
    account_id: int
    terms: Terms
    origin: str = "online"
    jwt_id: str | None = None
    jwt_signer: str | None = None
    webhook: str | None = None
    description: str | None = None
    metadata: dict[str, object] | None = None
    token: str | None = None


class PointerNotFound(LookupError):
    pass


EventData = Callable[[PointerRecord, datetime], dict[str, object]]
"""What an event about a pointer carries as its `data` (the API's view of the pointer, made by the caller)."""


async def announce(
    session: AsyncSession, row: models.Pointer, event: str, data: EventData | None, now: datetime
) -> None:
    """Queue `event` to the pointer's webhook, if it has one, in the transaction that makes the change.

    A pause that ends by itself is announced (`pointer.resumed`) by a message dated and due at its end,
    queued now; any change withdraws the one queued before (the pause moved, ended early or no longer
    applies) and queues it again if a pause with an end still holds."""
    await withdraw_scheduled(session, row.id, events.POINTER_RESUMED, now)
    if data is None or not row.webhook:
        return
    record = pointer_record(row)
    for at, what in ((now, event), (_pause_end(record, now), events.POINTER_RESUMED)):
        if at is not None:
            enqueue(
                session,
                url=row.webhook,
                event=what,
                body=data(record, at),
                now=at,
                account_id=row.account_id,
                pointer_id=row.id,
            )


def _pause_end(record: PointerRecord, now: datetime) -> datetime | None:
    """When the pause holding at `now` ends by itself, for a pointer that is not cancelled."""
    return None if record.cancelled_at is not None else resumes_at(record.version, now)


def new_token() -> str:
    """128 random bits, base64url: the bearer capability that names a pointer in its URL. Never starting with
    "-", which a command line would take for an option (`spsp-pull show -x...`)."""
    while (token := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return token


def new_tag() -> str:
    """The opaque id the pointer goes by in ILP addresses (never the token: connectors see addresses)."""
    return secrets.token_urlsafe(12)


async def create_pointer(
    db: Database, spec: NewPointer, now: datetime, *, event_data: EventData | None = None
) -> PointerRecord:
    """Store a new pointer (announced as `pointer.created` with `event_data`). For an offline (JWT) pointer
    that is already registered, return it unchanged: registering again never resets balances."""
    if spec.jwt_id is not None:
        existing = await find_by_jwt_id(db, spec.account_id, spec.jwt_signer, spec.jwt_id)
        if existing is not None:
            return existing
    version = Version.first(spec.terms)
    row = models.Pointer(
        token=spec.token or new_token(),
        tag=new_tag(),
        account_id=spec.account_id,
        origin=spec.origin,
        jwt_id=spec.jwt_id,
        jwt_signer=spec.jwt_signer,
        created_at=now,
        cancelled_at=None,
        webhook=spec.webhook,
        description=spec.description,
        metadata_json=spec.metadata,
        asset_code=spec.terms.asset_code,
        asset_scale=spec.terms.asset_scale,
        reserved_total=0,
    )
    apply_version(row, version)
    apply_usage(row, Usage(pulled_total=0, used_since_anchor=0, used_in_cycle=0, cycle=0))
    try:
        async with db.write() as session:
            session.add(row)
            await session.flush()
            session.add(_version_row(row.id, version, now, "created"))
            await announce(session, row, events.POINTER_CREATED, event_data, now)
    except IntegrityError:
        if spec.jwt_id is None:
            raise
        # Two first uses of the same offline pointer raced; the other one registered it.
        existing = await find_by_jwt_id(db, spec.account_id, spec.jwt_signer, spec.jwt_id)
        if existing is None:
            raise
        return existing
    return pointer_record(row)


async def find_by_token(db: Database, token: str) -> PointerRecord | None:
    return await _find_one(db, "token", token)


async def find_by_tag(db: Database, tag: str) -> PointerRecord | None:
    return await _find_one(db, "tag", tag)


async def find_by_id(db: Database, pointer_id: int) -> PointerRecord | None:
    return await _find_one(db, "id", pointer_id)


async def find_by_jwt_id(
    db: Database, account_id: int, signer: str | None, jwt_id: str
) -> PointerRecord | None:
    """The offline pointer `jwt_id` of this signer of the account, or one of the account's registered before
    signers were recorded (migration 0006)."""
    query = (
        select(models.Pointer)
        .where(
            models.Pointer.jwt_id == jwt_id,
            models.Pointer.account_id == account_id,
            or_(models.Pointer.jwt_signer == signer, models.Pointer.jwt_signer.is_(None)),
        )
        .order_by(models.Pointer.id)
        .limit(1)
    )
    async with db.read() as session:
        row = (await session.scalars(query)).first()
        return None if row is None else pointer_record(row)


async def owned_pointer(db: Database, account_id: int, token: str) -> PointerRecord:
    """The pointer, if this account made it. Another account's pointer is reported as not found."""
    record = await find_by_token(db, token)
    if record is None or record.account_id != account_id:
        raise PointerNotFound(token)
    return record


async def list_pointers(
    db: Database, account_id: int, *, after_id: int | None, limit: int
) -> list[PointerRecord]:
    query = select(models.Pointer).where(models.Pointer.account_id == account_id)
    if after_id is not None:
        query = query.where(models.Pointer.id > after_id)
    query = query.order_by(models.Pointer.id).limit(limit)
    async with db.read() as session:
        rows = (await session.scalars(query)).all()
        return [pointer_record(row) for row in rows]


async def revise_pointer(
    db: Database,
    account_id: int,
    token: str,
    changes: Changes | None,
    now: datetime,
    *,
    details: DetailChanges = NO_DETAIL_CHANGES,
    event_data: EventData | None = None,
) -> PointerRecord:
    """Apply an update in one transaction: changed terms as a new agreement version from the start of the
    current cycle (none without `changes`), and the changed details in place (they are not terms).
    Announced (with `event_data`) as `pointer.paused`, `pointer.resumed` or else `pointer.updated`."""
    async with db.write() as session:
        row = await lock_pointer(session, models.Pointer.token == token)
        if row is None or row.account_id != account_id:
            raise PointerNotFound(token)
        if row.cancelled_at is not None:
            raise InputError("pointer-cancelled", "A cancelled pointer cannot be changed.", status=409)
        if changes is not None:
            record = pointer_record(row)
            version = revise(record.version, record.usage, changes, now)
            usage = rebase_usage(record.usage, version, now)
            apply_version(row, version)
            apply_usage(row, usage)
            session.add(_version_row(row.id, version, now, revision_reason(changes)))
        if details.webhook is not KEEP:
            row.webhook = details.webhook
        if details.description is not KEEP:
            row.description = details.description
        if details.metadata is not KEEP:
            row.metadata_json = details.metadata
        await session.flush()
        await announce(session, row, _EVENT_OF_REASON[revision_reason(changes)], event_data, now)
        return pointer_record(row)


def revision_reason(changes: Changes | None) -> str:
    """How a version made by `changes` is recorded: "paused", "resumed", or "updated" (other terms only, or
    with None, no new version: details only)."""
    if changes is None or changes.paused is None:
        return "updated"
    return "paused" if changes.paused else "resumed"


_EVENT_OF_REASON = {
    "updated": events.POINTER_UPDATED,
    "paused": events.POINTER_PAUSED,
    "resumed": events.POINTER_RESUMED,
}


async def cancel_pointer(
    db: Database, account_id: int, token: str, now: datetime, *, event_data: EventData | None = None
) -> PointerRecord:
    """Cancel now (a new version), announced as `pointer.cancelled`; cancelling again changes nothing."""
    async with db.write() as session:
        row = await lock_pointer(session, models.Pointer.token == token)
        if row is None or row.account_id != account_id:
            raise PointerNotFound(token)
        if row.cancelled_at is None:
            row.cancelled_at = now
            version = replace(pointer_record(row).version, number=row.version + 1)
            apply_version(row, version)
            session.add(_version_row(row.id, version, now, "cancelled"))
            await session.flush()
            await announce(session, row, events.POINTER_CANCELLED, event_data, now)
        return pointer_record(row)


async def pointer_versions(db: Database, pointer_id: int) -> list[VersionRecord]:
    async with db.read() as session:
        pointer = await session.get_one(models.Pointer, pointer_id)
        rows = (
            await session.scalars(
                select(models.PointerVersion)
                .where(models.PointerVersion.pointer_id == pointer_id)
                .order_by(models.PointerVersion.id)
            )
        ).all()
        return [
            VersionRecord(
                version=version_of(
                    row, asset_code=pointer.asset_code, asset_scale=pointer.asset_scale, number=row.number
                ),
                created_at=row.created_at,
                reason=row.reason,
            )
            for row in rows
        ]


async def pointer_pulls(db: Database, pointer_id: int, *, limit: int = 100) -> list[PullRecord]:
    async with db.read() as session:
        rows = (
            await session.scalars(
                select(models.Pull)
                .where(models.Pull.pointer_id == pointer_id)
                .order_by(models.Pull.id.desc())
                .limit(limit)
            )
        ).all()
        return [
            PullRecord(
                id=row.id,
                amount=row.amount,
                kind=row.kind,
                cycle=row.cycle,
                created_at=row.created_at,
                reservation_id=row.reservation_id,
            )
            for row in rows
        ]


async def lock_pointer(session: AsyncSession, *where: object) -> models.Pointer | None:
    """Read a pointer row and hold it until the transaction ends (row lock on PostgreSQL; on SQLite the
    write transaction already holds the database's write lock)."""
    query = select(models.Pointer).where(*where).with_for_update()  # type: ignore[arg-type]
    return (await session.scalars(query)).one_or_none()


_POINTER_TABLE = cast(Table, models.Pointer.__table__)


async def _find_one(db: Database, column: str, value: object) -> PointerRecord | None:
    """The pointer whose unique `column` is `value`: one indexed SELECT, no ORM (the SPSP query path)."""
    return await db.select_one(_POINTER_TABLE, column, value, pointer_reader)


def _version_row(pointer_id: int, version: Version, now: datetime, reason: str) -> models.PointerVersion:
    row = models.PointerVersion(pointer_id=pointer_id, created_at=now, reason=reason)
    apply_version(row, version)
    return row
