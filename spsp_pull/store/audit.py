"""The ledger audit: every pointer's counters recomputed from the ledger rows, and every mismatch reported.

The pointer row carries running counters (`pulled_total`, `reserved_total`, `used_since_anchor`,
`used_in_cycle` of `usage_cycle`) so that a balance costs one row; the ledger explains them: the agreement
versions, the reservations (open, settled, released, recovered), the pulls written when a reservation
closes with value sent, and the payouts holding reservations. The audit reads all of it in one snapshot
and checks, per pointer:

* the counters against the ledger. `pulled_total` is the sum of the pulls, `reserved_total` the sum of the
  open reservations, `used_since_anchor` what the reservations of cycles from the current version's first
  one hold (open: their amount; closed: what they settled), `used_in_cycle` the same for `usage_cycle`.
  A revision that shortened the interval counts the use of the cycle it was made in against a later cycle
  too (`rebase_usage`, never in the payee's favour) and a reservation closed after it gives nothing back
  there: for such pointers the two usage counters may exceed the recomputation by at most the amounts of
  the reservations of those cycles;
* the debit against what the agreement versions authorised: per cycle under `cap = true`, cumulatively
  (every prefix of cycles) in any case, each cycle granting the largest amount of the versions in force
  during it (a lowered amount never turns what was legitimately pulled before the change into a fault);
* every stored amount in 0..U64_MAX, every reservation in a state it can reach (settled within its
  amount, a pull row for exactly what it settled, closed with a time), no pull without a reservation, no
  payout whose reservation contradicts its status, no open reservation left long after its lease
  (stream) or without its payout (payout) — the recovery and the payout reconciler close those.

It changes nothing. Cost: one pass over each ledger table in pointer-id batches, so a table of any size
is read in bounded memory.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import String, cast, exists, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from spsp_pull.domain.agreement import Version, current_cycle
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.money import U64_MAX
from spsp_pull.store import models
from spsp_pull.store.database import Database
from spsp_pull.store.records import make_version, version_columns

BATCH = 1_000  # pointers read and checked between two turns of the event loop
STALE_AFTER = timedelta(minutes=10)
"""How long past its lease a stream reservation may stay open (the recovery worker runs every few
seconds), and how old an open payout reservation without its payout may be (an approval in progress)."""

CLOCK_SKEW = timedelta(minutes=10)
"""How far ahead of the audit's clock an instance's clock may be: grants are counted up to `now` plus this,
so a pull made by an instance that is a little ahead is never taken for one beyond the agreement."""

RESERVATION_STATES = frozenset({"open", "settled", "released", "recovered"})
RESERVATION_KINDS = frozenset({"stream", "payout"})
_PAYOUT_RESERVATION = {
    "QUEUED": {"open"},
    "IN_FLIGHT": {"open"},
    "SENT": {"open", "settled"},  # open: the reconciler has yet to close a lagging reservation
    "CONFIRMED": {"open", "settled"},
    "FAILED": {"open", "released"},
    "CANCELLED": {"open", "released"},
}
_ONE_MICROSECOND = timedelta(microseconds=1)


class MismatchKind(StrEnum):
    COUNTER = "counter"  # a stored counter differs from its recomputation from the ledger
    OVER_AUTHORISED = "over-authorised"  # more debited than the agreement versions granted
    OUT_OF_RANGE = "out-of-range"  # an amount that is negative, above U64_MAX, or not an integer
    RESERVATION = "reservation"  # a reservation in a state it cannot reach
    PULL = "pull"  # a pull row that no reservation explains, or a reservation without its pull
    PAYOUT = "payout"  # a payout whose reservation contradicts its status
    ORPHAN = "orphan"  # an open reservation nobody will close, or a row without its pointer
    VERSION = "version"  # the agreement versions are missing, unreadable or out of sequence


@dataclass(frozen=True, slots=True)
class Mismatch:
    kind: MismatchKind
    pointer_id: int | None
    subject: str  # what is wrong: a counter's name, "reservation 12", ...
    found: str  # the stored value or state
    expected: str  # what the ledger says it should be

    def line(self) -> str:
        where = f"pointer {self.pointer_id}" if self.pointer_id is not None else "ledger"
        return f"{self.kind}: {where}: {self.subject}: found {self.found}, expected {self.expected}"

    def to_json(self) -> dict[str, object]:
        return {
            "kind": str(self.kind),
            "pointerId": self.pointer_id,
            "subject": self.subject,
            "found": self.found,
            "expected": self.expected,
        }


@dataclass(frozen=True, slots=True)
class AuditReport:
    at: datetime
    duration: timedelta
    pointers: int
    reservations: int
    pulls: int
    mismatches: tuple[Mismatch, ...]

    @property
    def clean(self) -> bool:
        return not self.mismatches

    def to_json(self) -> dict[str, object]:
        return {
            "at": self.at.isoformat().replace("+00:00", "Z"),
            "durationSeconds": self.duration.total_seconds(),
            "pointers": self.pointers,
            "reservations": self.reservations,
            "pulls": self.pulls,
            "clean": self.clean,
            "mismatches": [m.to_json() for m in self.mismatches],
        }


async def audit_ledger(
    db: Database, *, now: datetime, batch: int = BATCH, stale_after: timedelta = STALE_AFTER
) -> AuditReport:
    """Recompute every pointer's counters from the ledger in one read-only snapshot; see the module doc."""
    started = time.perf_counter()
    found = _Findings()
    pointers = reservations = pulls = 0
    async with db.read() as session:
        if not db.is_sqlite:
            # One snapshot for every statement (SQLite's read transaction is one already).
            await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        after = 0
        while True:
            connection = await session.connection()
            rows = (
                await connection.execute(
                    select(*_POINTER_COLUMNS)
                    .where(models.Pointer.id > after)
                    .order_by(models.Pointer.id)
                    .limit(batch)
                )
            ).all()
            if not rows:
                break
            ledger = await _Ledger.load(session, rows[0].id, rows[-1].id, found)
            for row in rows:
                _audit_pointer(row, ledger, now, found)
            ledger.check_shared_reservations()
            pointers += len(rows)
            reservations += len(ledger.reservations)
            pulls += ledger.pull_count
            after = rows[-1].id
            await asyncio.sleep(0)  # the server's own work goes on between batches
        await _rows_without_pointer(session, found)
        await _abandoned_reservations(session, now - stale_after, found)
    return AuditReport(
        at=now,
        duration=timedelta(seconds=time.perf_counter() - started),
        pointers=pointers,
        reservations=reservations,
        pulls=pulls,
        mismatches=tuple(found.items),
    )


def _text(column: Any) -> Any:
    """An amount column as its stored text: parsed here, so a tampered value is reported, not raised."""
    return cast(column, String).label(column.key)


_POINTER_COLUMNS = (
    models.Pointer.id,
    models.Pointer.version,
    models.Pointer.asset_code,
    models.Pointer.asset_scale,
    models.Pointer.cancelled_at,
    models.Pointer.usage_cycle,
    models.Pointer.base_cycle,
    _text(models.Pointer.pulled_total),
    _text(models.Pointer.reserved_total),
    _text(models.Pointer.used_since_anchor),
    _text(models.Pointer.used_in_cycle),
)
_VERSION_COLUMNS = (
    models.PointerVersion.pointer_id,
    models.PointerVersion.number,
    models.PointerVersion.reason,
    models.PointerVersion.created_at,
    _text(models.PointerVersion.amount),
    models.PointerVersion.interval,
    models.PointerVersion.cycles,
    models.PointerVersion.cap,
    models.PointerVersion.start,
    models.PointerVersion.expiry,
    models.PointerVersion.anchor,
    models.PointerVersion.base_cycle,
    _text(models.PointerVersion.carry),
    models.PointerVersion.schedule_origin,
    models.PointerVersion.pause_since,
    models.PointerVersion.pause_until,
)
_RESERVATION_COLUMNS = (
    models.Reservation.id,
    models.Reservation.pointer_id,
    models.Reservation.kind,
    models.Reservation.state,
    models.Reservation.cycle,
    _text(models.Reservation.amount),
    _text(models.Reservation.settled),
    models.Reservation.closed_at.is_not(None).label("closed"),
)
_PULL_COLUMNS = (
    models.Pull.id,
    models.Pull.pointer_id,
    models.Pull.reservation_id,
    models.Pull.kind,
    models.Pull.cycle,
    _text(models.Pull.amount),
)
_PAYOUT_COLUMNS = (
    models.Payout.id,
    models.Payout.pointer_id,
    models.Payout.status,
    models.Payout.reservation_id,
    models.Payout.approved_at,
    _text(models.Payout.debit),
)


class _Findings:
    def __init__(self) -> None:
        self.items: list[Mismatch] = []

    def add(
        self, kind: MismatchKind, pointer_id: int | None, subject: str, found: object, expected: str
    ) -> None:
        self.items.append(Mismatch(kind, pointer_id, subject, str(found), expected))

    def amount(self, pointer_id: int | None, subject: str, raw: str | None, *, positive: bool = False) -> int:
        """The stored amount `raw`; reported unless it is an integer in range (then counted as 0 when it is
        not an integer, else clamped into the range)."""
        value = int(raw) if raw is not None and raw.isascii() and raw.isdigit() else None
        low = 1 if positive else 0
        if value is None or not low <= value <= U64_MAX:
            self.add(MismatchKind.OUT_OF_RANGE, pointer_id, subject, raw, f"an integer in {low}..{U64_MAX}")
            return 0 if value is None else min(max(value, 0), U64_MAX)
        return value


@dataclass
class _Reservation:
    id: int
    pointer_id: int
    kind: str
    state: str
    cycle: int
    amount: int
    settled: int
    closed: bool
    pulled: list[tuple[int, int, str, int]] = field(default_factory=list)  # (pull id, amount, kind, cycle)
    payouts: list[int] = field(default_factory=list)

    @property
    def held(self) -> int:
        """What the reservation counts against the allowance: all of it while open, then what it sent."""
        return self.amount if self.state == "open" else self.settled


@dataclass
class _Ledger:
    """The ledger rows of the pointers with ids in one batch's range; what cannot be read is reported."""

    found: _Findings
    versions: dict[int, list[Any]] = field(default_factory=lambda: defaultdict(list))
    reservations: dict[int, _Reservation] = field(default_factory=dict)
    by_pointer: dict[int, list[_Reservation]] = field(default_factory=lambda: defaultdict(list))
    pulled: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    pull_count: int = 0

    @classmethod
    async def load(cls, session: AsyncSession, low: int, high: int, found: _Findings) -> _Ledger:
        ledger = cls(found)
        for row in await _rows(session, _VERSION_COLUMNS, models.PointerVersion.pointer_id, low, high):
            ledger.versions[row.pointer_id].append(row)
        for row in await _rows(session, _RESERVATION_COLUMNS, models.Reservation.pointer_id, low, high):
            ledger.add_reservation(row)
        for row in await _rows(session, _PULL_COLUMNS, models.Pull.pointer_id, low, high):
            ledger.add_pull(row)
        for row in await _rows(session, _PAYOUT_COLUMNS, models.Payout.pointer_id, low, high):
            ledger.check_payout(row)
        return ledger

    def add_reservation(self, row: Any) -> None:
        subject = f"reservation {row.id}"
        reservation = _Reservation(
            id=row.id,
            pointer_id=row.pointer_id,
            kind=row.kind,
            state=row.state,
            cycle=row.cycle,
            amount=self.found.amount(row.pointer_id, f"{subject} amount", row.amount, positive=True),
            settled=self.found.amount(row.pointer_id, f"{subject} settled", row.settled),
            closed=bool(row.closed),
        )
        self.reservations[row.id] = reservation
        self.by_pointer[row.pointer_id].append(reservation)

    def add_pull(self, row: Any) -> None:
        amount = self.found.amount(row.pointer_id, f"pull {row.id} amount", row.amount, positive=True)
        self.pull_count += 1
        self.pulled[row.pointer_id] += amount
        reservation = self.reservations.get(row.reservation_id) if row.reservation_id is not None else None
        if reservation is None or reservation.pointer_id != row.pointer_id:
            why = "no reservation" if row.reservation_id is None else f"reservation {row.reservation_id}"
            self.found.add(
                MismatchKind.PULL, row.pointer_id, f"pull {row.id}", why, "a reservation of its pointer"
            )
            return
        reservation.pulled.append((row.id, amount, row.kind, row.cycle))

    def check_payout(self, row: Any) -> None:
        pointer_id = row.pointer_id
        subject = f"payout {row.id} ({row.status})"
        expected_states = _PAYOUT_RESERVATION.get(row.status)
        if row.status == "CANCELLED" and row.approved_at is None:
            expected_states = None  # cancelled before approval: it never reserved anything
        reservation = self.reservations.get(row.reservation_id) if row.reservation_id is not None else None

        def contradiction(found: str, expected: str) -> None:
            self.found.add(MismatchKind.PAYOUT, pointer_id, subject, found, expected)

        if row.reservation_id is not None and (reservation is None or reservation.pointer_id != pointer_id):
            contradiction(f"reservation {row.reservation_id}", "a reservation of its own pointer")
            return
        if reservation is None:
            if expected_states is not None:
                contradiction("no reservation", "a reservation " + "/".join(sorted(expected_states)))
            return
        reservation.payouts.append(row.id)
        debit = self.found.amount(pointer_id, f"{subject} debit", row.debit, positive=True)
        state = reservation.state
        if expected_states is None or state not in expected_states:
            expected = "no reservation" if expected_states is None else "/".join(sorted(expected_states))
            contradiction(f"reservation {reservation.id} {state}", expected)
        elif reservation.amount != debit or (state == "settled" and reservation.settled != debit):
            found = f"reservation {reservation.id} of {reservation.amount} settled {reservation.settled}"
            contradiction(found, f"the debit {debit}")

    def check_shared_reservations(self) -> None:
        for reservation in self.reservations.values():
            if len(reservation.payouts) > 1:
                held = f"held by payouts {reservation.payouts}"
                subject = f"reservation {reservation.id}"
                self.found.add(MismatchKind.PAYOUT, reservation.pointer_id, subject, held, "one payout")


async def _rows(
    session: AsyncSession, columns: Sequence[Any], pointer_id: Any, low: int, high: int
) -> Sequence[Any]:
    query = select(*columns).where(pointer_id >= low, pointer_id <= high).order_by(pointer_id, columns[0])
    connection = await session.connection()  # Core rows: no ORM result processing for plain columns
    return (await connection.execute(query)).all()


def _audit_pointer(row: Any, ledger: _Ledger, now: datetime, found: _Findings) -> None:
    pointer_id: int = row.id
    stored = {
        name: found.amount(pointer_id, name, getattr(row, name))
        for name in ("pulled_total", "reserved_total", "used_since_anchor", "used_in_cycle")
    }
    reservations = ledger.by_pointer.get(pointer_id, [])
    for reservation in reservations:
        _check_reservation(reservation, found)
    versions = _versions(row, ledger.versions.get(pointer_id, []), found)

    held_in: dict[int, int] = defaultdict(int)
    for reservation in reservations:
        held_in[reservation.cycle] += reservation.held
    recomputed = {
        "pulled_total": ledger.pulled.get(pointer_id, 0),
        "reserved_total": sum(r.amount for r in reservations if r.state == "open"),
        "used_since_anchor": sum(held for cycle, held in held_in.items() if cycle >= row.base_cycle),
        "used_in_cycle": held_in.get(row.usage_cycle, 0) if row.usage_cycle else 0,
    }
    slack = _rebased_slack(versions, reservations)
    for name, expected in recomputed.items():
        value = stored[name]
        tolerance = slack if name in ("used_since_anchor", "used_in_cycle") else 0
        if not expected <= value <= expected + tolerance:
            wanted = str(expected) if not tolerance else f"{expected}..{expected + tolerance}"
            found.add(MismatchKind.COUNTER, pointer_id, name, value, wanted)
    if versions:
        _check_authorised(pointer_id, versions, row.cancelled_at, now + CLOCK_SKEW, held_in, found)


def _check_reservation(reservation: _Reservation, found: _Findings) -> None:
    subject = f"reservation {reservation.id}"
    pointer_id = reservation.pointer_id
    state = reservation.state

    def impossible(what: object, expected: str) -> None:
        found.add(MismatchKind.RESERVATION, pointer_id, subject, what, expected)

    if state not in RESERVATION_STATES or reservation.kind not in RESERVATION_KINDS:
        impossible(f"state {state!r}, kind {reservation.kind!r}", "a known state and kind")
        return
    if reservation.cycle < 1:
        impossible(f"cycle {reservation.cycle}", "a cycle from 1")
    if not 0 <= reservation.settled <= reservation.amount:
        impossible(f"settled {reservation.settled} of {reservation.amount}", "settled within the amount")
    if state == "open" and (reservation.settled or reservation.closed):
        impossible(f"open, settled {reservation.settled}, closed {reservation.closed}", "nothing settled")
    if state != "open" and not reservation.closed:
        impossible(f"{state} without closed_at", "a closing time")
    if state == "released" and reservation.settled:
        impossible(f"released with {reservation.settled} settled", "0 settled")
    if state == "recovered" and (reservation.kind != "stream" or reservation.settled != reservation.amount):
        impossible(
            f"recovered {reservation.kind}, {reservation.settled} of {reservation.amount}", "all of it"
        )
    pulled = sum(amount for _, amount, _, _ in reservation.pulled)
    expected_pull = reservation.settled if state != "open" else 0
    if pulled != expected_pull or len(reservation.pulled) > (1 if expected_pull else 0):
        found.add(
            MismatchKind.PULL,
            pointer_id,
            subject,
            f"{state}, settled {reservation.settled}, pulls {[a for _, a, _, _ in reservation.pulled]}",
            f"one pull of {expected_pull}" if expected_pull else "no pull",
        )
    want_kind = "recovered" if state == "recovered" else reservation.kind
    for pull_id, _, kind, cycle in reservation.pulled:
        if kind != want_kind or cycle != reservation.cycle:
            found.add(
                MismatchKind.PULL,
                pointer_id,
                f"pull {pull_id}",
                f"kind {kind}, cycle {cycle}",
                f"kind {want_kind}, cycle {reservation.cycle} (its reservation {reservation.id})",
            )


@dataclass(frozen=True, slots=True)
class _VersionRow:
    version: Version
    reason: str
    created_at: datetime


def _versions(pointer: Any, rows: Sequence[Any], found: _Findings) -> list[_VersionRow]:
    """The pointer's agreement versions in order; [] (reported) when they cannot be read or are out of
    sequence, so no authorisation check is made on a guess."""
    numbers = [row.number for row in rows]
    if numbers != list(range(1, len(rows) + 1)) or pointer.version != len(rows):
        found.add(
            MismatchKind.VERSION,
            pointer.id,
            "versions",
            numbers,
            f"1..{pointer.version} (the pointer's version)",
        )
        return []
    versions = []
    for row in rows:
        amount = found.amount(pointer.id, f"version {row.number} amount", row.amount, positive=True)
        carry = found.amount(pointer.id, f"version {row.number} carry", row.carry)
        try:
            columns = version_columns(
                row, asset_code=pointer.asset_code, asset_scale=pointer.asset_scale, number=row.number
            )
            version = make_version(columns._replace(amount=amount, carry=carry))  # the row has their text
        except (ValueError, InputError) as exc:
            found.add(MismatchKind.VERSION, pointer.id, f"version {row.number}", exc, "valid terms")
            return []
        versions.append(_VersionRow(version, row.reason, row.created_at))
    return versions


def _rebased_slack(versions: Sequence[_VersionRow], reservations: Iterable[_Reservation]) -> int:
    """How much a revision that moved the current cycle (a shorter interval, see `rebase_usage`) may have
    left counted twice in the usage counters: the reservations of each such revision's first cycle."""
    moved = {
        v.version.base_cycle
        for v in versions[1:]
        if v.reason == "updated" and current_cycle(v.version, v.created_at) not in (0, v.version.base_cycle)
    }
    return sum(r.amount for r in reservations if r.cycle in moved)


@dataclass(frozen=True, slots=True)
class _Grant:
    """Cycles `first..last` granted `amount` each by one version."""

    first: int
    last: int
    amount: int
    cap: bool


def _grants(versions: Sequence[_VersionRow], cancelled_at: datetime | None, end: datetime) -> list[_Grant]:
    """What each version granted while it was in force (until the next one, the cancellation, its expiry,
    or `end`)."""
    grants = []
    for i, row in enumerate(versions):
        version = row.version
        until = versions[i + 1].created_at if i + 1 < len(versions) else end
        if cancelled_at is not None:
            until = min(until, cancelled_at)
        if version.terms.expiry is not None:
            until = min(until, version.terms.expiry - _ONE_MICROSECOND)
        last = min(version.terms.cycles, current_cycle(version, until)) if until >= version.anchor else 0
        if last >= version.base_cycle:
            grants.append(_Grant(version.base_cycle, last, version.terms.amount, version.terms.cap))
    return grants


def _check_authorised(
    pointer_id: int,
    versions: Sequence[_VersionRow],
    cancelled_at: datetime | None,
    end: datetime,
    held_in: dict[int, int],
    found: _Findings,
) -> None:
    grants = _grants(versions, cancelled_at, end)
    # Cycles where versions overlap (a change mid-cycle) grant the largest of their amounts, once.
    bounds = sorted({g.first for g in grants} | {g.last + 1 for g in grants})
    pieces = []  # (first, last, amount per cycle, all versions cap)
    for first, after in itertools.pairwise(bounds):
        covering = [g for g in grants if g.first <= first and after - 1 <= g.last]
        if covering:
            pieces.append((first, after - 1, max(g.amount for g in covering), all(g.cap for g in covering)))
    debited = 0
    for cycle in sorted(held_in):
        held = held_in[cycle]
        debited += held
        granted = sum(
            amount * (min(last, cycle) - first + 1) for first, last, amount, _ in pieces if first <= cycle
        )
        if debited > granted:
            found.add(
                MismatchKind.OVER_AUTHORISED,
                pointer_id,
                f"debited through cycle {cycle}",
                debited,
                f"at most {granted} (granted by versions 1..{len(versions)})",
            )
            return
        capped = next((amount for first, last, amount, cap in pieces if cap and first <= cycle <= last), None)
        if capped is not None and held > capped:
            found.add(
                MismatchKind.OVER_AUTHORISED,
                pointer_id,
                f"debited in cycle {cycle}",
                held,
                f"at most {capped}",
            )
            return


async def _rows_without_pointer(session: AsyncSession, found: _Findings) -> None:
    """Ledger rows whose pointer does not exist (foreign keys forbid them; a hand-made change may not)."""
    for table, name in ((models.Reservation, "reservation"), (models.Pull, "pull")):
        orphans = (
            await session.execute(
                select(table.id, table.pointer_id)
                .where(~exists().where(models.Pointer.id == table.pointer_id))
                .order_by(table.id)
            )
        ).all()
        for row in orphans:
            found.add(
                MismatchKind.ORPHAN,
                None,
                f"{name} {row.id}",
                f"pointer {row.pointer_id}",
                "an existing pointer",
            )


async def _abandoned_reservations(session: AsyncSession, before: datetime, found: _Findings) -> None:
    """Open reservations that nobody will close: a stream one whose lease ran out before `before` (the
    recovery closes them within seconds), a payout one taken before `before` that no payout holds."""
    stale = select(
        models.Reservation.id, models.Reservation.pointer_id, models.Reservation.lease_until
    ).where(
        models.Reservation.state == "open",
        models.Reservation.kind == "stream",
        models.Reservation.lease_until < before,
    )
    for row in (await session.execute(stale.order_by(models.Reservation.id))).all():
        ran_out = f"open, lease ran out at {row.lease_until.isoformat()}"
        found.add(MismatchKind.ORPHAN, row.pointer_id, f"reservation {row.id}", ran_out, "recovered")
    held = select(models.Payout.id).where(models.Payout.reservation_id == models.Reservation.id)
    unheld = select(models.Reservation.id, models.Reservation.pointer_id).where(
        models.Reservation.state == "open",
        models.Reservation.kind == "payout",
        models.Reservation.created_at < before,
        ~held.exists(),
    )
    for reservation_id, pointer_id in (await session.execute(unheld.order_by(models.Reservation.id))).all():
        what = "open payout reservation that no payout holds"
        found.add(MismatchKind.ORPHAN, pointer_id, f"reservation {reservation_id}", what, "released")
