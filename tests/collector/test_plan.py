"""The collector's decisions, from a pointer's SPSP answer and its record (no I/O)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from spsp_pull.collector.outcome import Kind, PointerOutcome
from spsp_pull.collector.plan import Pull, View, begin, decide, finish, refused_outcome, resolve
from spsp_pull.collector.state import CycleRecord
from spsp_pull.domain.agreement import Terms, Usage, Version
from spsp_pull.domain.duration import parse_interval
from spsp_pull.domain.pull_refusal import SENDER_BUSY, code_of, no_rate, refusal

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
XRP = ("XRP", 9)


def view(**fields: object) -> View:
    base = View(
        state="active", cycle=3, total=2000, used=0, available=1000, amount=1000, cycles=12, asset=XRP
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def record(**fields: object) -> CycleRecord:
    base = CycleRecord("$p.example/1", cycle=2, target=1000, pulled=1000, paid_cycle=2, updated_at=NOW)
    return replace(base, **fields)  # type: ignore[arg-type]


def test_a_new_cycle_is_owed_its_amount() -> None:
    assert decide(view(), record(), None, XRP) == Pull(3, 1000, 0, 1000)
    assert decide(view(), None, None, XRP) == Pull(3, 1000, 0, 1000)  # never pulled: one cycle
    assert decide(view(), None, 400, XRP) == Pull(3, 400, 0, 400)  # the list's own amount per cycle


def test_cycles_missed_are_owed_as_far_as_available() -> None:
    assert decide(view(cycle=5, available=3500), record(), None, XRP) == Pull(5, 3000, 0, 3000)
    assert decide(view(cycle=5, available=1200), record(), None, XRP) == Pull(5, 1200, 0, 1200)


def test_a_collected_cycle_is_never_pulled_again_and_a_partial_one_is_completed() -> None:
    done = decide(view(cycle=2, available=5000), record(), None, XRP)
    assert isinstance(done, PointerOutcome) and (done.kind, done.reason) == (Kind.NOTHING_DUE, "collected")
    assert decide(view(cycle=2, available=5000), record(pulled=300), None, XRP) == Pull(2, 1000, 300, 700)


@pytest.mark.parametrize(
    ("fields", "kind", "reason"),
    [
        ({"state": "cancelled", "available": 0}, Kind.CANCELLED, "cancelled"),
        ({"state": "paused", "available": 0}, Kind.PAUSED, "paused"),
        ({"state": "pending", "cycle": 0, "available": 0}, Kind.NOTHING_DUE, "pending"),
        ({"available": 0}, Kind.NOTHING_DUE, "not-yet"),
        ({"state": "ended", "cycle": 13, "available": 0}, Kind.ENDED, "ended"),
        ({"state": "expired", "available": 0}, Kind.ENDED, "expired"),
        ({"asset": ("USD", 2)}, Kind.FAILED, "asset-mismatch"),
    ],
)
def test_no_pull(fields: dict[str, object], kind: Kind, reason: str) -> None:
    outcome = decide(view(**fields), record(), None, XRP)
    assert isinstance(outcome, PointerOutcome) and (outcome.kind, outcome.reason) == (kind, reason)


def test_after_the_last_cycle_what_accumulated_is_owed_once() -> None:
    ended = view(state="ended", cycle=14, cycles=12, available=2000)
    assert decide(ended, record(cycle=11, paid_cycle=11), None, XRP) == Pull(14, 1000, 0, 1000)
    over = decide(ended, record(cycle=12, paid_cycle=12), None, XRP)
    assert isinstance(over, PointerOutcome) and over.kind is Kind.ENDED


def test_an_interrupted_pull_is_read_from_the_ledger() -> None:
    before = view(total=2000, used=0)
    intent = begin(record(), "$p.example/1", Pull(3, 1000, 0, 1000), before, NOW)
    # The pull's reservation is open: its 1000 is used in the cycle but not yet in the total.
    assert resolve(intent, view(total=2000, used=1000, available=0)) is None
    took = resolve(intent, view(total=3000, used=1000, available=0))
    assert took is not None and (took.pulled, took.paid_cycle, took.intent) == (1000, 3, None)
    nothing = resolve(intent, view(total=2000, used=0))
    assert nothing is not None and (nothing.pulled, nothing.paid_cycle) == (0, 2)
    # The next cycle began meanwhile: the total alone tells.
    later = resolve(intent, view(cycle=4, total=2400, used=0))
    assert later is not None and (later.pulled, later.paid_cycle) == (400, 3)


def test_finish_records_what_arrived() -> None:
    intent = begin(None, "$p.example/1", Pull(3, 1000, 200, 800), view(), NOW)
    done = finish(intent, 800, NOW + timedelta(seconds=1))
    assert (done.pulled, done.paid_cycle, done.intent) == (1000, 3, None)
    assert finish(intent, 0, NOW).paid_cycle == 0


def terms(**fields: object) -> Terms:
    base = Terms(1000, "XRP", 9, parse_interval("P1D"), 3, True, NOW - timedelta(days=1), None)
    return replace(base, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("version_terms", "used", "at", "cancelled", "code"),
    [
        (terms(), 0, NOW, NOW, "cancelled"),
        (terms(start=NOW + timedelta(days=1)), 0, NOW, None, "pending"),
        (terms(), 1000, NOW, None, "not-yet"),
        (terms(cycles=2), 1000, NOW, None, "used-up"),
        (terms(cycles=1), 0, NOW + timedelta(days=2), None, "ended"),
        (terms(expiry=NOW + timedelta(hours=1)), 0, NOW + timedelta(hours=2), None, "expired"),
    ],
)
def test_every_refusal_message_reads_back_as_its_code(
    version_terms: Terms, used: int, at: datetime, cancelled: datetime | None, code: str
) -> None:
    usage = Usage(pulled_total=used, used_since_anchor=used, used_in_cycle=used, cycle=2)
    why = refusal(Version.first(version_terms), usage, at, cancelled)
    assert why is not None and why.code == code
    assert code_of(why.message) == code
    assert refused_outcome("$p.example/1", record(), "closed-by-server", why.message).reason == code


def test_the_causes_outside_the_agreement_read_back_too() -> None:
    assert code_of(SENDER_BUSY.message) == "sender-busy"
    assert code_of(no_rate("usd", "xrp").message) == "no-rate"
    assert code_of("Pull limit reached: nothing more is available on this pointer now.") is None
    timed_out = refused_outcome("$p.example/1", record(), "timeout", "")
    assert (timed_out.kind, timed_out.reason) == (Kind.FAILED, "timeout")
