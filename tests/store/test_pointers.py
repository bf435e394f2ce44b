"""Pointers through the store: versions survive the round trip with their exact schedule."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from spsp_pull.domain.agreement import Changes, current_cycle, global_cycle_window
from spsp_pull.domain.details_input import DetailChanges
from spsp_pull.domain.duration import parse_interval
from spsp_pull.domain.money import U64_MAX
from spsp_pull.domain.states import ReservationKind
from spsp_pull.store import models, pointers, reservations
from spsp_pull.store.accounts import ensure_admin
from spsp_pull.store.database import Database
from spsp_pull.store.records import pointer_record
from tests.store.pointer_factory import make_pointer, terms


async def test_month_end_schedule_survives_a_revision_and_the_database(db: Database) -> None:
    start = datetime(2024, 1, 31, tzinfo=UTC)
    record = await make_pointer(db, start, amount=100, interval="P1M", cycles=12)
    in_cycle_2 = datetime(2024, 3, 5, tzinfo=UTC)
    revised = await pointers.revise_pointer(
        db, record.account_id, record.token, Changes(amount=200), in_cycle_2
    )
    reread = await pointers.find_by_token(db, record.token)
    assert reread is not None and reread.version == revised.version
    assert current_cycle(reread.version, in_cycle_2) == 2
    assert global_cycle_window(reread.version, 3)[0] == datetime(2024, 3, 31, tzinfo=UTC)
    assert global_cycle_window(reread.version, 4)[0] == datetime(2024, 4, 30, tzinfo=UTC)
    versions = await pointers.pointer_versions(db, record.id)
    assert [v.version.number for v in versions] == [1, 2]
    assert versions[1].version == reread.version


def test_tokens_never_look_like_command_line_options() -> None:
    tokens = {pointers.new_token() for _ in range(5000)}  # 1 in 64 base64url strings starts with "-"
    assert len(tokens) == 5000
    assert not [t for t in tokens if t.startswith("-")]
    assert all(len(t) == 22 for t in tokens)


async def test_a_lookup_after_a_change_of_terms_reads_the_new_version(db: Database) -> None:
    start = datetime(2024, 1, 31, tzinfo=UTC)
    record = await make_pointer(db, start, amount=100, interval="P1M", cycles=12)
    assert (await pointers.find_by_token(db, record.token)) == record
    assert (await pointers.find_by_id(db, record.id)) == record
    revised = await pointers.revise_pointer(
        db, record.account_id, record.token, Changes(amount=200, interval=parse_interval("P1W")), start
    )
    assert revised.version.number == 2
    assert (await pointers.find_by_token(db, record.token)) == revised
    assert (await pointers.find_by_id(db, record.id)) == revised
    cancelled = await pointers.cancel_pointer(db, record.account_id, record.token, start)
    reread = await pointers.find_by_token(db, record.token)
    assert reread == cancelled and reread.version.number == 3


async def test_a_lookup_reads_the_usage_of_now_for_a_version_read_before(db: Database) -> None:
    now = datetime(2024, 1, 31, tzinfo=UTC)
    record = await make_pointer(db, now, amount=1000)
    assert await pointers.find_by_id(db, record.id) == record
    grant = await reservations.reserve(
        db, record.id, 300, kind=ReservationKind.STREAM, now=now, lease=timedelta(seconds=60)
    )
    assert grant is not None
    reread = await pointers.find_by_id(db, record.id)
    assert reread is not None and reread.version == record.version
    assert (reread.reserved_total, reread.usage.used_in_cycle) == (300, 300)


async def test_a_lookup_reads_the_record_the_orm_builds(db: Database) -> None:
    now = datetime(2024, 1, 31, 12, 30, 15, 123456, tzinfo=UTC)
    admin = await ensure_admin(db, "test-admin-key", now)
    record = await pointers.create_pointer(
        db,
        pointers.NewPointer(
            account_id=admin.id,
            terms=terms(now, amount=U64_MAX, interval="P1M", cycles=12, expiry=now + timedelta(days=400)),
            webhook="https://example.com/hook",
            description="rent",
            metadata={"invoice": 7, "lines": ["a", "b"]},
        ),
        now,
    )
    lease = timedelta(seconds=60)
    grant = await reservations.reserve(
        db, record.id, U64_MAX - 5, kind=ReservationKind.STREAM, now=now, lease=lease
    )
    assert grant is not None
    await reservations.settle(db, grant.reservation_id, U64_MAX - 9, now=now)
    assert (
        await reservations.reserve(db, record.id, 2, kind=ReservationKind.STREAM, now=now, lease=lease)
        is not None
    )
    later = now + timedelta(days=40)
    await pointers.revise_pointer(db, admin.id, record.token, Changes(amount=U64_MAX - 1, cycles=24), later)
    await pointers.cancel_pointer(db, admin.id, record.token, later + timedelta(hours=1))

    async with db.read() as session:
        orm = pointer_record(await session.get_one(models.Pointer, record.id))
    assert (
        orm.cancelled_at is not None and orm.version.number == 3 and orm.version.schedule_origin is not None
    )
    assert orm.usage.pulled_total == U64_MAX - 9 and orm.reserved_total == 2
    for _ in range(2):  # built, then with what was remembered of the first
        found = [
            await pointers.find_by_token(db, record.token),
            await pointers.find_by_id(db, record.id),
            await pointers.find_by_tag(db, record.tag),
        ]
        for lookup in found:
            assert lookup is not None
            assert dataclasses.asdict(lookup) == dataclasses.asdict(orm)
            assert lookup == orm


async def test_a_lookup_after_a_change_of_details_reads_them_at_once(db: Database) -> None:
    now = datetime(2024, 1, 31, tzinfo=UTC)
    admin = await ensure_admin(db, "test-admin-key", now)
    record = await pointers.create_pointer(
        db,
        pointers.NewPointer(
            account_id=admin.id, terms=terms(now), webhook="https://old.example/hook", description="rent"
        ),
        now,
    )
    assert await pointers.find_by_token(db, record.token) == record  # its version is now remembered
    changed = await pointers.revise_pointer(
        db,
        admin.id,
        record.token,
        None,
        now,
        details=DetailChanges(webhook="https://new.example/hook", metadata={"order": 7}),
    )
    for lookup in (pointers.find_by_token(db, record.token), pointers.find_by_tag(db, record.tag)):
        reread = await lookup
        assert reread == changed
        assert reread is not None and reread.webhook == "https://new.example/hook"
        assert (reread.description, reread.metadata) == ("rent", {"order": 7})
        assert reread.version == record.version and reread.usage == record.usage
    assert [v.version.number for v in await pointers.pointer_versions(db, record.id)] == [1]
    removed = await pointers.revise_pointer(
        db, admin.id, record.token, None, now, details=DetailChanges(webhook=None, description=None)
    )
    assert (removed.webhook, removed.description, removed.metadata) == (None, None, {"order": 7})
    assert await pointers.find_by_token(db, record.token) == removed
