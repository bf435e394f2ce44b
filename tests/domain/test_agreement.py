from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spsp_pull.domain.agreement import (
    Balance,
    Changes,
    Terms,
    Usage,
    Version,
    balance,
    current_cycle,
    global_cycle_window,
    rebase_usage,
    revise,
    state,
)
from spsp_pull.domain.cycles import cycle_window
from spsp_pull.domain.duration import MICROS_PER_HOUR, Interval
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.money import U64_MAX
from tests.domain.helpers import at, utc_datetimes

MONTHLY = Interval(1, 0, 0)
WEEKLY = Interval(0, 7, 0)
START = at(2024, 1, 31)
NOTHING_USED = Usage(pulled_total=0, used_since_anchor=0, used_in_cycle=0, cycle=0)
# Cycle k of a monthly agreement from START begins on CYCLE[k].
CYCLE = {k: MONTHLY.step(START, k - 1) for k in range(1, 13)}


def make_terms(**overrides: Any) -> Terms:
    base = Terms(
        amount=100,
        asset_code="USD",
        asset_scale=2,
        interval=MONTHLY,
        cycles=3,
        cap=True,
        start=START,
        expiry=None,
    )
    return dataclasses.replace(base, **overrides)


@dataclass
class Pointer:
    """A pointer as the store keeps it: the current version and its usage, updated by pulls."""

    version: Version
    usage: Usage = NOTHING_USED
    cancelled_at: datetime | None = None
    pulls: list[tuple[datetime, int]] = field(default_factory=list)

    @classmethod
    def of(cls, **overrides: Any) -> Pointer:
        return cls(Version.first(make_terms(**overrides)))

    def balance(self, now: datetime) -> Balance:
        return balance(self.version, self.usage, now, self.cancelled_at)

    def available(self, now: datetime) -> int:
        return self.balance(now).available

    def pull(self, now: datetime, amount: int) -> None:
        assert 0 < amount <= self.available(now)
        c = current_cycle(self.version, now)
        self.usage = Usage(
            pulled_total=self.usage.pulled_total + amount,
            used_since_anchor=self.usage.used_since_anchor + amount,
            used_in_cycle=self.usage.in_cycle(c) + amount,
            cycle=c,
        )
        self.pulls.append((now, amount))

    def revise(self, now: datetime, **changes: Any) -> None:
        self.version = revise(self.version, self.usage, Changes(**changes), now)
        self.usage = rebase_usage(self.usage, self.version, now)


# --- balance and state of one version -------------------------------------------------------------


def test_before_start_nothing_is_available() -> None:
    pointer = Pointer.of()
    now = START - timedelta(microseconds=1)
    assert pointer.balance(now) == Balance(total=0, interval=0, available=0, cycle=0)
    assert state(pointer.version, now, None) == "pending"


def test_use_it_or_lose_it_with_cap() -> None:
    pointer = Pointer.of(cap=True)
    assert pointer.balance(START) == Balance(total=0, interval=0, available=100, cycle=1)
    pointer.pull(START + timedelta(days=3), 60)
    assert pointer.balance(CYCLE[2] - timedelta(microseconds=1)) == Balance(60, 60, 40, 1)
    assert pointer.balance(CYCLE[2]) == Balance(total=60, interval=0, available=100, cycle=2)
    pointer.pull(CYCLE[3], 100)
    assert pointer.balance(CYCLE[3]) == Balance(total=160, interval=100, available=0, cycle=3)
    assert pointer.balance(CYCLE[4]) == Balance(total=160, interval=0, available=0, cycle=4)
    assert state(pointer.version, CYCLE[3], None) == "active"
    assert state(pointer.version, CYCLE[4], None) == "ended"


def test_unpulled_allowance_accumulates_without_cap() -> None:
    pointer = Pointer.of(cap=False)
    pointer.pull(START, 60)
    assert pointer.available(START) == 40
    assert pointer.available(CYCLE[2]) == 140
    assert pointer.available(CYCLE[3]) == 240
    # after the last cycle what was granted stays pullable, nothing more is added
    assert pointer.available(CYCLE[4]) == 240
    assert pointer.available(at(2090)) == 240
    assert state(pointer.version, CYCLE[4], None) == "ended"
    pointer.pull(CYCLE[5], 240)
    assert pointer.balance(CYCLE[5]) == Balance(total=300, interval=240, available=0, cycle=5)


@pytest.mark.parametrize("cap", [True, False])
def test_nothing_at_or_after_expiry(cap: bool) -> None:
    expiry = CYCLE[2] + timedelta(days=1)
    pointer = Pointer.of(cap=cap, expiry=expiry)
    assert pointer.available(expiry - timedelta(microseconds=1)) == (100 if cap else 200)
    assert pointer.available(expiry) == 0
    assert state(pointer.version, expiry, None) == "expired"
    assert pointer.balance(expiry).cycle == 2


@pytest.mark.parametrize("cap", [True, False])
def test_nothing_after_cancel_even_on_a_clock_that_runs_behind(cap: bool) -> None:
    pointer = Pointer.of(cap=cap)
    pointer.cancelled_at = CYCLE[2]
    assert pointer.available(CYCLE[2]) == 0
    assert pointer.available(CYCLE[2] - timedelta(seconds=1)) == 0
    assert state(pointer.version, CYCLE[1], CYCLE[2]) == "cancelled"


def test_available_is_capped_at_u64() -> None:
    pointer = Pointer.of(amount=U64_MAX, cap=False)
    assert pointer.available(CYCLE[3]) == U64_MAX
    pointer.pull(CYCLE[3], U64_MAX - 1)
    assert pointer.available(CYCLE[3]) == U64_MAX
    assert pointer.available(CYCLE[1]) == 1  # the clock going back never offers more than was granted


def test_a_revision_carries_at_most_u64_max() -> None:
    pointer = Pointer.of(amount=U64_MAX, cap=False, cycles=12)
    pointer.revise(CYCLE[3], amount=5)  # cycles 1 and 2 granted 2 * U64_MAX, none of it pulled
    assert pointer.version.carry == U64_MAX
    assert pointer.available(CYCLE[3]) == U64_MAX


def test_state_precedence() -> None:
    version = Version.first(make_terms(expiry=CYCLE[5]))
    assert state(version, START - timedelta(days=1), None) == "pending"
    assert state(version, START, None) == "active"
    assert state(version, CYCLE[4], None) == "ended"
    assert state(version, CYCLE[5], None) == "expired"
    assert state(version, CYCLE[5], CYCLE[2]) == "cancelled"


@pytest.mark.parametrize(
    ("term", "value", "message"),
    [
        ("amount", 0, "amount"),
        ("amount", U64_MAX + 1, "amount"),
        ("cycles", 0, "cycles"),
        ("expiry", START, "expiry"),
        ("start", datetime(2024, 1, 1), "naive"),
    ],
)
def test_terms_invariants(term: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_terms(**{term: value})


@pytest.mark.parametrize(
    ("number", "base_cycle", "carry", "message"),
    [
        (0, 1, 0, "count from 1"),
        (1, 0, 0, "count from 1"),
        (1, 1, -1, "carry -1 is outside"),
        (1, 1, U64_MAX + 1, f"carry {U64_MAX + 1} is outside"),
    ],
)
def test_version_invariants(number: int, base_cycle: int, carry: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Version(make_terms(), number=number, anchor=START, base_cycle=base_cycle, carry=carry)


def test_first_version() -> None:
    terms = make_terms()
    assert Version.first(terms) == Version(terms=terms, number=1, anchor=START, base_cycle=1, carry=0)


# --- revisions ---------------------------------------------------------------------------------------

MID_CYCLE_2 = CYCLE[2] + timedelta(days=10)


def test_extending_cycles() -> None:
    pointer = Pointer.of(cap=True)
    pointer.pull(CYCLE[3], 30)
    pointer.revise(CYCLE[3] + timedelta(days=1), cycles=5)
    assert (pointer.version.number, pointer.version.anchor, pointer.version.base_cycle) == (2, CYCLE[3], 3)
    assert pointer.available(CYCLE[3] + timedelta(days=1)) == 70
    assert pointer.available(CYCLE[5]) == 100
    assert pointer.available(CYCLE[6]) == 0


def test_extending_an_ended_agreement_grants_from_the_current_cycle() -> None:
    pointer = Pointer.of(cap=True)
    assert state(pointer.version, CYCLE[4], None) == "ended"
    pointer.revise(CYCLE[4], cycles=4)
    assert pointer.balance(CYCLE[4]) == Balance(total=0, interval=0, available=100, cycle=4)
    assert state(pointer.version, CYCLE[4], None) == "active"


@pytest.mark.parametrize("cap", [True, False])
def test_shortening_below_the_current_cycle_ends_now(cap: bool) -> None:
    pointer = Pointer.of(cap=cap, cycles=12)
    pointer.revise(MID_CYCLE_2, cycles=1)
    assert pointer.available(MID_CYCLE_2) == 0
    assert pointer.available(CYCLE[7]) == 0
    assert state(pointer.version, MID_CYCLE_2, None) == "ended"


def test_shortening_forfeits_the_carry_for_good() -> None:
    pointer = Pointer.of(cap=False, cycles=12)
    pointer.revise(CYCLE[3], cycles=2)
    assert pointer.version.carry == 0
    pointer.revise(CYCLE[3] + timedelta(days=1), cycles=12)
    assert pointer.available(CYCLE[3] + timedelta(days=1)) == 100


@pytest.mark.parametrize(
    "changes", [{"cycles": 3}, {"cycles": 4}, {"amount": 5}, {"clear_expiry": True}, {"cap": False}]
)
def test_changes_after_the_last_cycle_keep_the_accumulated_allowance(changes: dict[str, Any]) -> None:
    pointer = Pointer.of(cap=False, cycles=3, expiry=CYCLE[12])
    pointer.pull(CYCLE[2], 50)
    pointer.revise(CYCLE[5], **changes)
    assert pointer.available(CYCLE[5]) == 250
    assert pointer.available(CYCLE[11]) == 250
    assert state(pointer.version, CYCLE[5], None) == "ended"


def test_shortening_after_the_last_cycle_ends_the_accumulated_allowance() -> None:
    pointer = Pointer.of(cap=False, cycles=3)
    pointer.revise(CYCLE[5], cycles=2)
    assert pointer.available(CYCLE[5]) == 0


def test_shortening_to_the_current_cycle_keeps_it() -> None:
    pointer = Pointer.of(cap=False, cycles=12)
    pointer.revise(MID_CYCLE_2, cycles=2)
    assert pointer.available(MID_CYCLE_2) == 200
    assert pointer.available(CYCLE[3]) == 200
    assert state(pointer.version, CYCLE[3], None) == "ended"


def test_raising_the_amount_mid_cycle_counts_what_was_pulled() -> None:
    pointer = Pointer.of(cap=True)
    pointer.pull(CYCLE[2], 60)
    pointer.revise(MID_CYCLE_2, amount=150)
    assert pointer.balance(MID_CYCLE_2) == Balance(total=60, interval=60, available=90, cycle=2)
    assert pointer.available(CYCLE[3]) == 150


def test_lowering_the_amount_below_what_was_pulled_leaves_nothing_this_cycle() -> None:
    pointer = Pointer.of(cap=True)
    pointer.pull(CYCLE[2], 60)
    pointer.revise(MID_CYCLE_2, amount=50)
    assert pointer.available(MID_CYCLE_2) == 0
    assert pointer.available(CYCLE[3]) == 50


def test_raising_the_amount_without_cap_carries_the_unpulled_allowance() -> None:
    pointer = Pointer.of(cap=False, cycles=4)
    pointer.pull(START, 20)
    pointer.pull(CYCLE[2], 30)
    pointer.revise(MID_CYCLE_2, amount=200)
    assert pointer.version.carry == 80  # cycle 1: granted 100, pulled 20
    assert pointer.usage.used_since_anchor == 30
    assert pointer.available(MID_CYCLE_2) == 80 + 200 - 30
    assert pointer.available(CYCLE[4]) == 80 + 3 * 200 - 30


def test_lowering_the_amount_without_cap_never_reclaims_the_carry() -> None:
    pointer = Pointer.of(cap=False)
    pointer.revise(MID_CYCLE_2, amount=10)
    assert pointer.available(MID_CYCLE_2) == 100 + 10


def test_cap_false_to_true_loses_the_carry() -> None:
    pointer = Pointer.of(cap=False)
    pointer.pull(CYCLE[2], 30)
    pointer.revise(MID_CYCLE_2, cap=True)
    assert pointer.version.carry == 100  # on record, but use-it-or-lose-it ignores it
    assert pointer.available(MID_CYCLE_2) == 70
    assert pointer.available(CYCLE[3]) == 100


def test_cap_true_to_false_starts_accumulating_from_the_current_cycle() -> None:
    pointer = Pointer.of(cap=True)
    pointer.pull(CYCLE[2], 30)
    pointer.revise(MID_CYCLE_2, cap=False)
    assert pointer.version.carry == 0  # cycle 1's leftover was lost when it ended
    assert pointer.available(MID_CYCLE_2) == 70
    assert pointer.available(CYCLE[3]) == 170


def test_toggling_cap_back_and_forth_creates_nothing() -> None:
    pointer = Pointer.of(cap=False, cycles=5)
    pointer.revise(MID_CYCLE_2, cap=True)
    pointer.revise(MID_CYCLE_2 + timedelta(days=1), cap=False)
    assert pointer.version.carry == 0
    assert pointer.available(MID_CYCLE_2 + timedelta(days=1)) == 100


def test_interval_change_keeps_cycle_numbering_continuous() -> None:
    start = at(2024, 1, 1)
    pointer = Pointer.of(start=start, cycles=10, cap=False)
    pointer.pull(at(2024, 3, 2), 100)
    pointer.revise(at(2024, 3, 5), interval=WEEKLY)
    version = pointer.version
    assert (version.anchor, version.base_cycle, version.carry) == (at(2024, 3, 1), 3, 200)
    assert cycle_window(version.anchor, WEEKLY, 1) == (at(2024, 3, 1), at(2024, 3, 8))
    assert [pointer.balance(day).cycle for day in (at(2024, 3, 5), at(2024, 3, 8), at(2024, 3, 15))] == [
        3,
        4,
        5,
    ]
    assert pointer.available(at(2024, 3, 5)) == 200 + 100 - 100
    assert pointer.available(at(2024, 3, 8)) == 200 + 200 - 100
    # global cycle 10 is the 8th week from March 1: the last one
    assert pointer.available(at(2024, 12, 1)) == 200 + 8 * 100 - 100
    assert state(pointer.version, at(2024, 4, 26), None) == "ended"


def test_shorter_interval_counts_the_cycles_use_against_the_now_current_cycle() -> None:
    pointer = Pointer.of(start=at(2024, 1, 1), cycles=10, cap=True)
    pointer.pull(at(2024, 3, 16), 100)
    pointer.revise(at(2024, 3, 20), interval=WEEKLY, amount=40)
    # March 1 + 2 weeks: the revision lands in the new version's third week (global cycle 5)
    assert pointer.balance(at(2024, 3, 20)) == Balance(total=100, interval=100, available=0, cycle=5)
    assert pointer.available(at(2024, 3, 22)) == 40


def test_a_revision_keeps_month_end_boundaries() -> None:
    pointer = Pointer.of(cap=True, cycles=6)
    pointer.revise(MID_CYCLE_2, amount=200)  # cycle 2 starts on the clamped Feb 29
    version = pointer.version
    assert (version.anchor, version.schedule_origin, version.base_cycle) == (CYCLE[2], START, 2)
    assert [global_cycle_window(version, c)[0] for c in (2, 3, 4)] == [CYCLE[2], CYCLE[3], CYCLE[4]]
    assert CYCLE[3] == at(2024, 3, 31)
    assert pointer.balance(at(2024, 3, 30)).cycle == 2
    assert pointer.balance(at(2024, 3, 31)) == Balance(total=0, interval=0, available=200, cycle=3)
    pointer.revise(at(2024, 4, 2), cycles=7)
    assert (pointer.version.anchor, pointer.version.schedule_origin) == (CYCLE[3], START)
    assert global_cycle_window(pointer.version, 4) == (at(2024, 4, 30), at(2024, 5, 31))


def test_an_interval_change_starts_a_new_schedule() -> None:
    pointer = Pointer.of(cap=True, cycles=6)
    pointer.revise(MID_CYCLE_2, interval=Interval(2, 0, 0))
    assert (pointer.version.anchor, pointer.version.schedule_origin) == (CYCLE[2], None)
    assert global_cycle_window(pointer.version, 3) == (at(2024, 4, 29), at(2024, 6, 29))


def test_version_origin_must_lie_on_the_schedule() -> None:
    terms = make_terms()
    on_schedule = Version(terms, 2, anchor=CYCLE[3], base_cycle=3, carry=0, schedule_origin=START)
    assert global_cycle_window(on_schedule, 4) == (CYCLE[4], CYCLE[5])
    for anchor in (CYCLE[3] + timedelta(days=1), START - timedelta(days=31)):
        with pytest.raises(ValueError, match="boundary"):
            Version(terms, 2, anchor=anchor, base_cycle=3, carry=0, schedule_origin=START)


def test_windows_before_the_version_are_not_its_own() -> None:
    pointer = Pointer.of()
    pointer.revise(MID_CYCLE_2, amount=5)
    with pytest.raises(ValueError, match="before"):
        global_cycle_window(pointer.version, 1)


def test_revising_before_the_start_replaces_the_terms() -> None:
    pointer = Pointer.of(cap=False)
    pointer.revise(START - timedelta(days=1), amount=300, interval=WEEKLY)
    assert pointer.version == Version(
        terms=make_terms(cap=False, amount=300, interval=WEEKLY),
        number=2,
        anchor=START,
        base_cycle=1,
        carry=0,
    )
    assert pointer.usage == NOTHING_USED
    assert pointer.available(START + timedelta(days=7)) == 600


def test_revising_twice_in_one_cycle_keeps_the_carry() -> None:
    pointer = Pointer.of(cap=False, cycles=5)
    pointer.pull(CYCLE[2], 10)
    pointer.revise(MID_CYCLE_2, amount=150)
    pointer.pull(MID_CYCLE_2, 20)
    pointer.revise(MID_CYCLE_2 + timedelta(days=1), amount=120)
    assert (pointer.version.number, pointer.version.carry) == (3, 100)
    assert pointer.available(MID_CYCLE_2 + timedelta(days=1)) == 100 + 120 - 30


def test_expiry_changes() -> None:
    pointer = Pointer.of(cap=False, expiry=CYCLE[3])
    pointer.revise(MID_CYCLE_2, expiry=CYCLE[6])
    assert pointer.available(CYCLE[4]) == 300
    pointer.revise(MID_CYCLE_2, clear_expiry=True)
    assert pointer.version.terms.expiry is None


def test_a_revision_keeps_the_expiry_it_does_not_change() -> None:
    pointer = Pointer.of(cap=False, cycles=12, expiry=CYCLE[5])
    pointer.revise(MID_CYCLE_2, amount=200)
    assert pointer.version.terms.expiry == CYCLE[5]
    assert pointer.available(CYCLE[5] - timedelta(seconds=1)) == 100 + 3 * 200
    assert pointer.available(CYCLE[5]) == 0


AFTER_START = "expiry must be after the start"
IN_FUTURE = "expiry must be in the future"


@pytest.mark.parametrize(
    ("now", "expiry", "code", "detail"),
    [
        (START - timedelta(days=5), START, "start-after-expiry", AFTER_START),
        (START - timedelta(days=5), START - timedelta(days=1), "start-after-expiry", AFTER_START),
        (MID_CYCLE_2, START - timedelta(days=1), "start-after-expiry", AFTER_START),
        (MID_CYCLE_2, MID_CYCLE_2, "expiry-in-past", IN_FUTURE),
        (MID_CYCLE_2, CYCLE[2], "expiry-in-past", IN_FUTURE),
    ],
)
def test_unusable_expiry_is_refused(now: datetime, expiry: datetime, code: str, detail: str) -> None:
    version = Version.first(make_terms())
    with pytest.raises(InputError) as caught:
        revise(version, NOTHING_USED, Changes(expiry=expiry), now)
    assert (caught.value.code, caught.value.field, caught.value.detail) == (code, "expiry", detail)


def test_a_clock_behind_the_version_reads_its_first_cycle() -> None:
    pointer = Pointer.of(cap=True)
    pointer.revise(MID_CYCLE_2, amount=200)
    assert current_cycle(pointer.version, CYCLE[2] - timedelta(seconds=1)) == 2


def test_changes_cannot_both_set_and_clear_expiry() -> None:
    with pytest.raises(ValueError, match="expiry"):
        Changes(expiry=CYCLE[5], clear_expiry=True)


# --- properties ----------------------------------------------------------------------------------

HOUR = timedelta(microseconds=MICROS_PER_HOUR)
INTERVALS = [MONTHLY, WEEKLY, Interval(0, 1, 0), Interval(1, 15, 0), Interval(0, 0, 5 * MICROS_PER_HOUR)]

waits = st.builds(lambda hours: ("wait", hours), st.integers(0, 24 * 50))
pulls = st.builds(lambda percent: ("pull", percent), st.integers(1, 100))
revisions = st.builds(
    lambda changes: ("revise", changes),
    st.builds(
        Changes,
        amount=st.none() | st.integers(1, 1000),
        interval=st.none() | st.sampled_from(INTERVALS),
        cycles=st.none() | st.integers(1, 12),
        cap=st.none() | st.booleans(),
    ),
)


@settings(max_examples=150, deadline=None)
@given(
    amount=st.integers(1, 1000),
    interval=st.sampled_from(INTERVALS),
    cycles=st.integers(1, 8),
    cap=st.booleans(),
    actions=st.lists(st.one_of(waits, pulls, revisions), min_size=5, max_size=30),
)
def test_pulls_never_exceed_what_the_terms_granted(
    amount: int, interval: Interval, cycles: int, cap: bool, actions: list[tuple[str, Any]]
) -> None:
    """Random pulls, waits and revisions against an independent account of what was granted.

    `granted[g]` is the most any version in force during global cycle g granted for it (nothing past a
    version's last cycle). Without cap all pulls together stay within all grants; with cap, a pull never
    takes what was pulled within the current cycle's window beyond the amount.
    """
    pointer = Pointer.of(amount=amount, interval=interval, cycles=cycles, cap=cap)
    now = START
    granted: dict[int, int] = {}

    def record_grants() -> None:
        version, c = pointer.version, current_cycle(pointer.version, now)
        for g in range(version.base_cycle, min(c, version.terms.cycles) + 1):
            granted[g] = max(granted.get(g, 0), version.terms.amount)

    for action, argument in actions:
        record_grants()
        if action == "wait":
            now += argument * HOUR
        elif action == "revise":
            pointer.revise(now, **{f.name: getattr(argument, f.name) for f in dataclasses.fields(Changes)})
        elif available := pointer.available(now):
            pointer.pull(now, max(1, available * argument // 100))
            if pointer.version.terms.cap:
                window_start, _ = global_cycle_window(pointer.version, current_cycle(pointer.version, now))
                in_window = sum(pulled for when, pulled in pointer.pulls if when >= window_start)
                assert in_window <= pointer.version.terms.amount
        record_grants()
        assert pointer.usage.pulled_total == sum(pulled for _, pulled in pointer.pulls)
        assert pointer.usage.pulled_total <= sum(granted.values())


@settings(max_examples=150, deadline=None)
@given(
    amount=st.integers(1, U64_MAX // 16),
    interval=st.sampled_from(INTERVALS),
    cycles=st.integers(1, 8),
    cap=st.booleans(),
    pull_at=st.lists(st.tuples(st.integers(0, 24 * 400), st.integers(1, 100)), max_size=20),
)
def test_sum_over_cycles_stays_within_amount_times_cycles(
    amount: int, interval: Interval, cycles: int, cap: bool, pull_at: list[tuple[int, int]]
) -> None:
    pointer = Pointer.of(amount=amount, interval=interval, cycles=cycles, cap=cap)
    for hours, percent in sorted(pull_at):
        now = START + hours * HOUR
        if available := pointer.available(now):
            pointer.pull(now, max(1, available * percent // 100))
    per_cycle: dict[int, int] = {}
    for when, pulled in pointer.pulls:
        c = current_cycle(pointer.version, when)
        per_cycle[c] = per_cycle.get(c, 0) + pulled
    assert sum(per_cycle.values()) <= amount * cycles
    if cap:
        assert all(total <= amount for total in per_cycle.values())
        assert max(per_cycle, default=1) <= cycles
    else:
        # nothing granted is ever lost without cap: after the last cycle the rest is still there
        after_last = interval.step(START, cycles)
        assert pointer.available(after_last) + pointer.usage.pulled_total == amount * cycles


@settings(max_examples=150, deadline=None)
@given(
    cap=st.booleans(),
    cycles=st.integers(1, 6),
    pull_hours=st.lists(st.integers(0, 24 * 200), max_size=6),
    revise_hours=st.integers(0, 24 * 250),
    extra_cycles=st.integers(0, 5),
)
def test_a_revision_that_changes_nothing_or_extends_keeps_the_balance(
    cap: bool, cycles: int, pull_hours: list[int], revise_hours: int, extra_cycles: int
) -> None:
    pointer = Pointer.of(cap=cap, cycles=cycles)
    for hours in sorted(pull_hours):
        now = START + hours * HOUR
        if available := pointer.available(now):
            pointer.pull(now, available // 2 or 1)
    now = START + max([revise_hours, *pull_hours]) * HOUR
    before = pointer.balance(now)
    pointer.revise(now, cycles=cycles + extra_cycles)
    after = pointer.balance(now)
    assert after.cycle == before.cycle
    assert after.total == before.total
    if extra_cycles == 0 or before.cycle <= cycles:
        assert after == before
    else:
        assert after.available >= before.available


@given(
    amount=st.integers(1, U64_MAX),
    cap=st.booleans(),
    cycles=st.integers(1, 10**9),
    carry=st.integers(0, U64_MAX),
    used=st.tuples(st.integers(0, 2 * U64_MAX), st.integers(0, 2 * U64_MAX), st.integers(0, 40)),
    now=utc_datetimes(low_year=2023, high_year=2200),
)
def test_available_stays_within_zero_and_u64(
    amount: int, cap: bool, cycles: int, carry: int, used: tuple[int, int, int], now: datetime
) -> None:
    version = Version(make_terms(amount=amount, cap=cap, cycles=cycles), 1, START, 1, carry)
    since_anchor, in_cycle, cycle = used
    result = balance(version, Usage(since_anchor, since_anchor, in_cycle, cycle), now, None)
    assert 0 <= result.available <= U64_MAX
    assert (result.available == 0) if now < START else result.cycle >= 1
