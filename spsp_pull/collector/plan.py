"""What to do with one pointer, from its SPSP answer and the collector's record of it. No I/O.

A pointer is owed one cycle's amount (the agreement's, or the list's own per-pointer amount) for each cycle
since the last one anything arrived for — one when the collector never pulled it — and never more than the
server says is available. Within the cycle last worked on, only what is still missing of its target is owed:
a cycle fully collected is never pulled again, and a partial one is completed while it lasts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from spsp_pull.collector.outcome import Kind, PointerOutcome
from spsp_pull.collector.state import CycleRecord, Intent
from spsp_pull.domain.pull_refusal import code_of

OVER = frozenset({"ended", "expired"})


@dataclass(frozen=True, slots=True)
class View:
    """What a pointer's SPSP answer (`pull`, RFC 0036) says: `used` is its balance's `interval` (used in the
    current cycle, reservations included), `total` what was pulled all time (settled)."""

    state: str
    cycle: int
    total: int
    used: int
    available: int
    amount: int
    cycles: int
    asset: tuple[str, int]

    @classmethod
    def of(cls, pull: dict[str, Any]) -> View:
        """Raises ValueError (KeyError, TypeError) when the answer lacks a field."""
        balance, agreement = pull["balance"], pull["agreement"]
        return cls(
            state=str(pull["state"]),
            cycle=int(pull["cycle"]),
            total=int(balance["total"]),
            used=int(balance["interval"]),
            available=int(balance["available"]),
            amount=int(agreement["amount"]),
            cycles=int(agreement["cycles"]),
            asset=(str(agreement["asset"]["code"]), int(agreement["asset"]["scale"])),
        )


@dataclass(frozen=True, slots=True)
class Pull:
    """Pull `amount` now, for `cycle`, whose `target` had `already` arrived."""

    cycle: int
    target: int
    already: int
    amount: int


def resolve(record: CycleRecord, view: View) -> CycleRecord | None:
    """The record of an interrupted pull (one with an intent), completed from the ledger; None while a
    reservation the pull made is still open (the server settles it once the pull's connection is gone).

    What the pointer's total grew by since the intent is what that pull took."""
    intent = record.intent
    assert intent is not None
    took = max(0, view.total - intent.total_before)
    if view.cycle == record.cycle and view.used - intent.used_before > took:
        return None
    return replace(
        record,
        pulled=record.pulled + took,
        paid_cycle=record.cycle if took else record.paid_cycle,
        intent=None,
    )


def decide(
    view: View, record: CycleRecord | None, per_cycle: int | None, asset: tuple[str, int] | None
) -> Pull | PointerOutcome:
    """What to pull now, or the outcome without a pull (`pointer` left empty for the caller)."""
    if asset is not None and view.asset != asset:
        detail = f"the pointer is in {view.asset[0]}/{view.asset[1]}, our account in {asset[0]}/{asset[1]}"
        return PointerOutcome("", Kind.FAILED, view.cycle, reason="asset-mismatch", detail=detail)
    if view.state == "cancelled":
        return PointerOutcome("", Kind.CANCELLED, view.cycle, reason="cancelled")
    if view.state == "paused":
        return PointerOutcome("", Kind.PAUSED, view.cycle, reason="paused")
    if view.state == "pending":
        return PointerOutcome("", Kind.NOTHING_DUE, view.cycle, reason="pending")
    idle = Kind.ENDED if view.state in OVER else Kind.NOTHING_DUE
    if record is not None and record.cycle == view.cycle:
        target, already = record.target, record.pulled
    else:
        last_granted = min(view.cycle, view.cycles)
        owed = last_granted - (record.paid_cycle if record is not None else last_granted - 1)
        target, already = min(view.available, (per_cycle or view.amount) * max(0, owed)), 0
    amount = min(target - already, view.available)
    if amount <= 0:
        reason = view.state if idle is Kind.ENDED else ("collected" if already or target else "not-yet")
        return PointerOutcome("", idle, view.cycle, target=target, reason=reason)
    return Pull(view.cycle, target, already, amount)


def begin(record: CycleRecord | None, pointer: str, pull: Pull, view: View, now: datetime) -> CycleRecord:
    """The record written before `pull` starts."""
    return CycleRecord(
        pointer,
        pull.cycle,
        pull.target,
        pull.already,
        record.paid_cycle if record is not None else 0,
        now,
        Intent(view.used, view.total, now),
    )


def finish(intent: CycleRecord, arrived: int, now: datetime) -> CycleRecord:
    """The record written after the pull, with what arrived."""
    return replace(
        intent,
        pulled=intent.pulled + arrived,
        paid_cycle=intent.cycle if arrived else intent.paid_cycle,
        updated_at=now,
        intent=None,
    )


def pulled_outcome(pointer: str, record: CycleRecord, arrived: int, *, recovered: bool) -> PointerOutcome:
    kind = Kind.PULLED if record.pulled >= record.target else Kind.PARTIAL
    return PointerOutcome(pointer, kind, record.cycle, arrived, record.target, recovered=recovered)


# What a pull that got nothing came to, by the refusal code the server closed the stream with.
_REFUSED = {
    "cancelled": Kind.CANCELLED,
    "paused": Kind.PAUSED,
    "ended": Kind.ENDED,
    "expired": Kind.ENDED,
    "used-up": Kind.ENDED,
    "not-yet": Kind.NOTHING_DUE,
    "pending": Kind.NOTHING_DUE,
}


def refused_outcome(pointer: str, record: CycleRecord, why: str, detail: str) -> PointerOutcome:
    """A pull that got nothing: `why` is the payee's reason (`closed-by-server`, `timeout`, ...), `detail`
    the server's close message."""
    code = code_of(detail) or ("timeout" if why == "timeout" else "closed")
    kind = _REFUSED.get(code, Kind.FAILED)
    return PointerOutcome(pointer, kind, record.cycle, 0, record.target, reason=code, detail=detail)
