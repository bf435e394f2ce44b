"""The ledger audit on real databases: a clean ledger passes, every kind of corruption is reported, and the
CLI exits as documented (a real subprocess)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from sqlalchemy import text

from harness.server_process import ServerProcess
from spsp_pull.domain.agreement import Changes
from spsp_pull.domain.clock import ManualClock
from spsp_pull.domain.duration import parse_interval
from spsp_pull.domain.money import U64_MAX
from spsp_pull.domain.states import ReservationKind
from spsp_pull.store import models, pointers, reservations
from spsp_pull.store.audit import STALE_AFTER, AuditReport, Mismatch, MismatchKind, audit_ledger
from spsp_pull.store.database import Database, sqlite_url
from spsp_pull.store.records import PointerRecord
from tests.ilp.hostile.databases import process_database, url_of
from tests.store.pointer_factory import make_pointer

LEASE = timedelta(seconds=60)
AUDIT_MISMATCH_EXIT = 3


async def sql(db: Database, statement: str, **params: object) -> None:
    async with db.write() as session:
        await session.execute(text(statement), params)


async def audit(db: Database, clock: ManualClock) -> AuditReport:
    return await audit_ledger(db, now=clock.now())


def kinds(report: AuditReport) -> list[tuple[MismatchKind, str]]:
    return [(m.kind, m.subject) for m in report.mismatches]


async def busy_ledger(db: Database, clock: ManualClock) -> list[PointerRecord]:
    """Pointers with every state of reservation, a payout-kind one, a revision and a cancellation."""
    now = clock.now()
    monthly = await make_pointer(db, now, amount=1000)
    capped = await make_pointer(db, now, amount=500, cap=True, interval="P1D", cycles=5)
    cancelled = await make_pointer(db, now, amount=300)
    settled = await reservations.reserve(
        db, monthly.id, 400, kind=ReservationKind.STREAM, now=now, lease=LEASE
    )
    released = await reservations.reserve(
        db, monthly.id, 100, kind=ReservationKind.STREAM, now=now, lease=LEASE
    )
    payout = await reservations.reserve(db, monthly.id, 50, kind=ReservationKind.PAYOUT, now=now, lease=LEASE)
    assert settled and released and payout
    await reservations.settle(db, settled.reservation_id, 250, now=now)
    await reservations.release(db, released.reservation_id, now=now)
    await reservations.settle(db, payout.reservation_id, 50, now=now)
    for _ in range(3):  # one pull per day, each day's 500 used up
        grant = await reservations.reserve(
            db, capped.id, 10_000, kind=ReservationKind.STREAM, now=clock.now(), lease=LEASE
        )
        assert grant is not None and grant.amount == 500
        await reservations.settle(db, grant.reservation_id, 500, now=clock.now())
        clock.advance(timedelta(days=1))
    lost = await reservations.reserve(
        db, cancelled.id, 120, kind=ReservationKind.STREAM, now=clock.now(), lease=LEASE
    )
    assert lost is not None
    await reservations.recover_expired(db, now=clock.now() + LEASE * 2)
    await pointers.revise_pointer(db, monthly.account_id, monthly.token, Changes(amount=400), clock.now())
    await pointers.cancel_pointer(db, cancelled.account_id, cancelled.token, clock.now())
    still_open = await reservations.reserve(
        db, monthly.id, 10, kind=ReservationKind.STREAM, now=clock.now(), lease=LEASE
    )
    assert still_open is not None
    return [monthly, capped, cancelled]


async def test_a_clean_ledger_passes(db: Database, clock: ManualClock) -> None:
    await busy_ledger(db, clock)
    report = await audit(db, clock)
    assert report.mismatches == ()
    assert report.clean
    assert (report.pointers, report.reservations, report.pulls) == (3, 8, 6)


async def test_lowering_the_amount_after_a_pull_and_shortening_the_interval_are_not_mismatches(
    db: Database, clock: ManualClock
) -> None:
    """Legitimate states at the edges of the checks: used above a lowered amount, and a shorter interval
    that counts the current use against a later cycle (`rebase_usage`) while its reservation is settled."""
    now = clock.now()
    lowered = await make_pointer(db, now, amount=1000, cap=True)
    grant = await reservations.reserve(db, lowered.id, 900, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert grant is not None
    await reservations.settle(db, grant.reservation_id, 900, now=now)
    await pointers.revise_pointer(db, lowered.account_id, lowered.token, Changes(amount=100), now)

    shortened = await make_pointer(db, now, amount=1000)
    held = await reservations.reserve(
        db, shortened.id, 600, kind=ReservationKind.STREAM, now=now, lease=LEASE
    )
    assert held is not None
    clock.advance(timedelta(days=10))
    daily = Changes(interval=parse_interval("P1D"))
    await pointers.revise_pointer(db, shortened.account_id, shortened.token, daily, clock.now())
    await reservations.settle(db, held.reservation_id, 200, now=clock.now())
    after = await pointers.find_by_id(db, shortened.id)
    assert after is not None and after.usage.used_in_cycle == 600  # the 400 returned stays counted there

    assert (await audit(db, clock)).mismatches == ()


async def test_a_counter_changed_with_sql_is_reported_with_both_values(
    db: Database, clock: ManualClock
) -> None:
    monthly, capped, _ = await busy_ledger(db, clock)
    await sql(db, "UPDATE pointers SET used_in_cycle = '0' WHERE id = :id", id=monthly.id)
    await sql(db, "UPDATE pointers SET pulled_total = '1499' WHERE id = :id", id=capped.id)
    report = await audit(db, clock)
    assert set(report.mismatches) == {
        Mismatch(MismatchKind.COUNTER, monthly.id, "used_in_cycle", "0", "310"),
        Mismatch(MismatchKind.COUNTER, capped.id, "pulled_total", "1499", "1500"),
    }
    line = next(m.line() for m in report.mismatches if m.subject == "pulled_total")
    assert line == f"counter: pointer {capped.id}: pulled_total: found 1499, expected 1500"


async def test_swapped_usage_counters_are_reported(db: Database, clock: ManualClock) -> None:
    """Cycle 2 of a `cap: false` pointer: 1,000 used since the anchor, 400 of it in this cycle."""
    now = clock.now()
    record = await make_pointer(db, now, amount=1000)
    first = await reservations.reserve(db, record.id, 600, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert first is not None
    await reservations.settle(db, first.reservation_id, 600, now=now)
    clock.advance(timedelta(days=31))
    second = await reservations.reserve(
        db, record.id, 400, kind=ReservationKind.STREAM, now=clock.now(), lease=LEASE
    )
    assert second is not None
    await sql(
        db,
        "UPDATE pointers SET used_since_anchor = used_in_cycle, used_in_cycle = used_since_anchor"
        " WHERE id = :id",
        id=record.id,
    )
    assert set(kinds(await audit(db, clock))) == {
        (MismatchKind.COUNTER, "used_since_anchor"),
        (MismatchKind.COUNTER, "used_in_cycle"),
    }


async def test_a_debit_beyond_the_agreement_is_reported(db: Database, clock: ManualClock) -> None:
    """The current terms on the pointer row raised behind the versions' back, a pull made, the terms put
    back: every counter agrees with the ledger, but the versions never granted that much."""
    now = clock.now()
    record = await make_pointer(db, now, amount=1000)
    await sql(db, "UPDATE pointers SET amount = '5000' WHERE id = :id", id=record.id)
    grant = await reservations.reserve(db, record.id, 5000, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert grant is not None and grant.amount == 5000
    await reservations.settle(db, grant.reservation_id, 4000, now=now)
    await sql(db, "UPDATE pointers SET amount = '1000' WHERE id = :id", id=record.id)
    assert (await audit(db, clock)).mismatches == (
        Mismatch(
            MismatchKind.OVER_AUTHORISED,
            record.id,
            "debited through cycle 1",
            "4000",
            "at most 1000 (granted by versions 1..1)",
        ),
    )


async def test_a_capped_cycle_debited_beyond_its_amount_is_reported(db: Database, clock: ManualClock) -> None:
    """Use it or lose it: cycle 1's unused 1,000 does not cover 1,500 in cycle 2."""
    record = await make_pointer(db, clock.now(), amount=1000, cap=True)
    clock.advance(timedelta(days=31))
    await sql(db, "UPDATE pointers SET amount = '1500' WHERE id = :id", id=record.id)
    grant = await reservations.reserve(
        db, record.id, 1500, kind=ReservationKind.STREAM, now=clock.now(), lease=LEASE
    )
    assert grant is not None and grant.amount == 1500
    await sql(db, "UPDATE pointers SET amount = '1000' WHERE id = :id", id=record.id)
    assert kinds(await audit(db, clock)) == [(MismatchKind.OVER_AUTHORISED, "debited in cycle 2")]


async def test_orphan_reservations_are_reported_once_stale(db: Database, clock: ManualClock) -> None:
    """An open payout reservation no payout holds, and a stream reservation nobody recovered."""
    now = clock.now()
    record = await make_pointer(db, now, amount=1000)
    payout = await reservations.reserve(db, record.id, 100, kind=ReservationKind.PAYOUT, now=now, lease=LEASE)
    stream = await reservations.reserve(db, record.id, 100, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert payout and stream
    assert (await audit(db, clock)).clean
    clock.advance(LEASE + STALE_AFTER + timedelta(seconds=1))
    assert set(kinds(await audit(db, clock))) == {
        (MismatchKind.ORPHAN, f"reservation {payout.reservation_id}"),
        (MismatchKind.ORPHAN, f"reservation {stream.reservation_id}"),
    }


async def test_a_reservation_missing_from_the_counters_is_reported(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    record = await make_pointer(db, now, amount=1000)
    grant = await reservations.reserve(db, record.id, 300, kind=ReservationKind.STREAM, now=now, lease=LEASE)
    assert grant is not None
    await sql(
        db,
        "UPDATE pointers SET reserved_total = '0', used_since_anchor = '0', used_in_cycle = '0'"
        " WHERE id = :id",
        id=record.id,
    )
    assert set(kinds(await audit(db, clock))) == {
        (MismatchKind.COUNTER, "reserved_total"),
        (MismatchKind.COUNTER, "used_since_anchor"),
        (MismatchKind.COUNTER, "used_in_cycle"),
    }


async def test_impossible_reservations_and_pulls_are_reported(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    record = await make_pointer(db, now, amount=1000)
    released = await reservations.reserve(
        db, record.id, 100, kind=ReservationKind.STREAM, now=now, lease=LEASE
    )
    settled = await reservations.reserve(
        db, record.id, 200, kind=ReservationKind.STREAM, now=now, lease=LEASE
    )
    assert released and settled
    await reservations.settle(db, released.reservation_id, 100, now=now)
    await reservations.settle(db, settled.reservation_id, 200, now=now)
    # Marked released although its 100 left (and its pull says so); the other one's pull deleted.
    await sql(db, "UPDATE reservations SET state = 'released' WHERE id = :id", id=released.reservation_id)
    await sql(db, "DELETE FROM pulls WHERE reservation_id = :id", id=settled.reservation_id)
    assert set(kinds(await audit(db, clock))) == {
        (MismatchKind.RESERVATION, f"reservation {released.reservation_id}"),
        (MismatchKind.PULL, f"reservation {settled.reservation_id}"),
        (MismatchKind.COUNTER, "pulled_total"),
    }


async def test_amounts_out_of_the_u64_range_are_reported(db: Database, clock: ManualClock) -> None:
    now = clock.now()
    record = await make_pointer(db, now, amount=1000)
    await sql(db, "UPDATE pointers SET reserved_total = '-5' WHERE id = :id", id=record.id)
    await sql(db, f"UPDATE pointers SET pulled_total = '{U64_MAX + 1}' WHERE id = :id", id=record.id)
    report = await audit(db, clock)
    assert {(m.kind, m.subject, m.found) for m in report.mismatches} >= {
        (MismatchKind.OUT_OF_RANGE, "reserved_total", "-5"),
        (MismatchKind.OUT_OF_RANGE, "pulled_total", str(U64_MAX + 1)),
    }


# -- the CLI, as a real process ---------------------------------------------------------------------


async def run_cli(data_dir: Path, url: str, *extra: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPSP_")}
    args = ["--data-dir", str(data_dir)] + (["--database-url", url] if url else [])
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "spsp_pull.cli",
        "audit",
        *args,
        *extra,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_cli_exits_0_when_clean_and_3_with_a_line_per_mismatch(backend: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # The CLI audits at the system time: the ledger (three days of pulls) ends a minute before it.
    clock = ManualClock(datetime.now(UTC) - timedelta(days=3, minutes=1))
    async with process_database(backend, data_dir) as url:
        db = Database(url_of(backend, data_dir, url))
        try:
            monthly, capped, _ = await busy_ledger(db, clock)
            status, output = await run_cli(data_dir, url)
            assert status == 0, output
            assert output.startswith("audit: clean: 3 pointers, 8 reservations, 6 pulls in ")

            await sql(db, "UPDATE pointers SET used_in_cycle = '0' WHERE id = :id", id=monthly.id)
            await sql(db, "UPDATE pointers SET reserved_total = '7' WHERE id = :id", id=capped.id)
            status, output = await run_cli(data_dir, url)
            assert status == AUDIT_MISMATCH_EXIT, output
            assert output.splitlines()[:2] == [
                f"counter: pointer {monthly.id}: used_in_cycle: found 0, expected 310",
                f"counter: pointer {capped.id}: reserved_total: found 7, expected 0",
            ]
            assert output.splitlines()[2].startswith("audit: 2 mismatches: 3 pointers")

            status, output = await run_cli(data_dir, url, "--json")
            assert status == AUDIT_MISMATCH_EXIT
            body = json.loads(output)
            assert body["clean"] is False and body["pointers"] == 3
            assert body["mismatches"][0] == {
                "kind": "counter",
                "pointerId": monthly.id,
                "subject": "used_in_cycle",
                "found": "0",
                "expected": "310",
            }
        finally:
            await db.close()


async def test_cli_without_a_database_exits_1(tmp_path: Path) -> None:
    status, output = await run_cli(tmp_path / "nothing-here", "")
    assert status == 1
    assert "no database in" in output


# -- the server's periodic audit and its metric -----------------------------------------------------


async def audit_metric(server: ServerProcess) -> float | None:
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("spsp_pull_audit_mismatches "):
                return float(line.split()[1])
    return None


async def metric_becomes(server: ServerProcess, value: float) -> None:
    """Poll another process's /metrics (there is no event to await) for at most 10 s."""
    for _ in range(100):
        if await audit_metric(server) == value:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"spsp_pull_audit_mismatches is {await audit_metric(server)}, not {value}")


async def test_the_server_audits_at_start_and_on_its_interval(tmp_path: Path) -> None:
    env = {"SPSP_AUTH_TOKEN": "audit-admin-key", "SPSP_AUDIT_INTERVAL": "1"}
    async with ServerProcess(tmp_path, env=env) as server:
        await metric_becomes(server, 0)
        db = Database(sqlite_url(tmp_path / "spsp-pull.sqlite3"))
        try:
            record = await make_pointer(db, datetime.now(UTC), amount=1000)
            await sql(db, "UPDATE pointers SET pulled_total = '5' WHERE id = :id", id=record.id)
        finally:
            await db.close()
        await metric_becomes(server, 1)
        assert b"ledger audit: counter: pointer" in server.output


async def add_payout(
    db: Database,
    record: PointerRecord,
    reservation_id: int | None,
    status: str,
    debit: int,
    *,
    approved: bool = True,
) -> int:
    now = datetime.now(UTC)
    payout = models.Payout(
        public_id=str(uuid.uuid4()),
        pointer_id=record.id,
        account_id=record.account_id,
        created_by="owner",
        rail="lightning",
        destination="lnbc1...",
        amount_side="price",
        transfer_msat=debit * 1000,
        fee_msat=0,
        debit=debit,
        asset_code="USD",
        asset_scale=2,
        rate="1",
        status=status,
        reservation_id=reservation_id,
        attempts=0,
        created_at=now,
        expires_at=now + timedelta(minutes=10),
        approved_at=now if approved else None,
    )
    async with db.write() as session:
        session.add(payout)
        await session.flush()
        return payout.id


async def test_payouts_whose_reservation_contradicts_their_status_are_reported(
    db: Database, clock: ManualClock
) -> None:
    """QUEUED holds an open reservation and SENT a settled one: clean, and held (never orphans). FAILED
    with its debit settled, or a payout holding another's debit amount, are contradictions."""
    now = clock.now()
    record = await make_pointer(db, now, amount=10_000)
    grants = [
        await reservations.reserve(db, record.id, 100, kind=ReservationKind.PAYOUT, now=now, lease=LEASE)
        for _ in range(4)
    ]
    assert all(grants)
    queued, sent, failed, wrong = (g.reservation_id for g in grants if g is not None)
    for reservation_id in (sent, failed):
        await reservations.settle(db, reservation_id, 100, now=now)
    await add_payout(db, record, queued, "QUEUED", 100)
    await add_payout(db, record, sent, "SENT", 100)
    failed_payout = await add_payout(db, record, failed, "FAILED", 100)
    wrong_payout = await add_payout(db, record, wrong, "IN_FLIGHT", 99)
    clock.advance(STALE_AFTER * 2)
    assert set(kinds(await audit(db, clock))) == {
        (MismatchKind.PAYOUT, f"payout {failed_payout} (FAILED)"),
        (MismatchKind.PAYOUT, f"payout {wrong_payout} (IN_FLIGHT)"),
    }


async def test_a_payout_cancelled_before_approval_holds_no_reservation(
    db: Database, clock: ManualClock
) -> None:
    """NEW → CANCELLED never reserved anything (the reservation comes with the approval): clean. Cancelled
    after its approval, it must hold its released reservation."""
    record = await make_pointer(db, clock.now(), amount=10_000)
    await add_payout(db, record, None, "CANCELLED", 100, approved=False)
    assert kinds(await audit(db, clock)) == []
    approved = await add_payout(db, record, None, "CANCELLED", 100, approved=True)
    assert kinds(await audit(db, clock)) == [(MismatchKind.PAYOUT, f"payout {approved} (CANCELLED)")]
