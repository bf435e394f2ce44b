"""The payer's pause: nothing is available while it holds, cycles that start within it grant nothing and
still count, the cycle in progress keeps its grant, and a pause ends by itself at `resumesAt`."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spsp_pull.domain.agreement import (
    Balance,
    Changes,
    Pause,
    Version,
    current_cycle,
    global_cycle_window,
    paused,
    resumes_at,
    state,
)
from spsp_pull.domain.errors import InputError
from spsp_pull.domain.pull_refusal import code_of, refusal
from tests.domain.test_agreement import CYCLE, HOUR, INTERVALS, START, Pointer, make_terms

MID_1 = START + timedelta(days=10)
MID_2 = CYCLE[2] + timedelta(days=10)
MID_3 = CYCLE[3] + timedelta(days=10)
MID_4 = CYCLE[4] + timedelta(days=10)


def paused_pointer(at: datetime, until: datetime | None = None, **terms: Any) -> Pointer:
    pointer = Pointer.of(**terms)
    pointer.revise(at, paused=True, resumes_at=until)
    return pointer


def test_while_paused_nothing_is_available_and_the_state_says_so() -> None:
    pointer = Pointer.of(cap=True)
    pointer.pull(START, 30)
    pointer.revise(MID_1, paused=True)
    assert pointer.balance(MID_1) == Balance(total=30, interval=30, available=0, cycle=1)
    assert state(pointer.version, MID_1, None) == "paused"
    assert paused(pointer.version, MID_1) and resumes_at(pointer.version, MID_1) is None
    assert pointer.version.pause == Pause(since=MID_1)
    assert (pointer.version.number, pointer.version.anchor, pointer.version.base_cycle) == (2, START, 1)


def test_resumed_within_the_cycle_the_rest_of_its_grant_is_pullable_again() -> None:
    pointer = Pointer.of(cap=True)
    pointer.pull(START, 30)
    pointer.revise(MID_1, paused=True)
    pointer.revise(MID_1 + timedelta(days=1), paused=False)
    assert pointer.available(MID_1 + timedelta(days=1)) == 70  # what was used stays used
    assert state(pointer.version, MID_1 + timedelta(days=1), None) == "active"
    assert pointer.version.pause == Pause(since=MID_1, until=MID_1 + timedelta(days=1))
    assert pointer.available(CYCLE[2]) == 100  # later cycles grant as before


def test_cycles_that_start_while_paused_grant_nothing_and_still_count() -> None:
    pointer = Pointer.of(cap=True, cycles=4)
    pointer.pull(START, 30)
    pointer.revise(MID_1, paused=True)
    assert pointer.balance(MID_2) == Balance(total=30, interval=0, available=0, cycle=2)
    pointer.revise(MID_3, paused=False)
    # cycle 3 started within the pause: nothing, even after the resume; the unused rest of cycle 1 is gone
    assert pointer.balance(MID_3) == Balance(total=30, interval=0, available=0, cycle=3)
    assert refusal(pointer.version, pointer.usage, MID_3, None) is not None
    assert pointer.balance(CYCLE[4]) == Balance(total=30, interval=0, available=100, cycle=4)
    assert state(pointer.version, CYCLE[5], None) == "ended"  # the calendar did not move


def test_without_cap_the_paused_cycles_add_nothing_and_the_rest_carries_over() -> None:
    pointer = Pointer.of(cap=False, cycles=5)
    pointer.pull(START, 30)
    pointer.revise(MID_1, paused=True)
    assert pointer.available(MID_2) == 0
    pointer.revise(MID_3, paused=False)
    assert pointer.available(MID_3) == 70  # cycle 1's rest; cycles 2 and 3 started while paused
    assert pointer.version.carry == 70 and pointer.version.base_cycle == 3
    assert pointer.available(CYCLE[4]) == 170
    assert pointer.available(CYCLE[6]) == 270  # cycles 4 and 5; the agreement still ends after cycle 5


@pytest.mark.parametrize(("cap", "at_the_end"), [(True, 100), (False, 200)])
def test_a_pause_ends_by_itself_at_resumes_at(cap: bool, at_the_end: int) -> None:
    pointer = paused_pointer(MID_1, until=CYCLE[2], cap=cap)
    before = CYCLE[2] - timedelta(microseconds=1)
    assert state(pointer.version, before, None) == "paused"
    assert resumes_at(pointer.version, before) == CYCLE[2]
    # a cycle that starts exactly when the pause ends grants
    assert pointer.balance(CYCLE[2]) == Balance(total=0, interval=0, available=at_the_end, cycle=2)
    assert state(pointer.version, CYCLE[2], None) == "active"
    assert resumes_at(pointer.version, CYCLE[2]) is None


@pytest.mark.parametrize(("cap", "in_cycle_2", "in_cycle_3"), [(True, 100, 100), (False, 200, 300)])
def test_a_cycle_that_starts_at_the_moment_of_the_pause_was_in_progress_and_keeps_its_grant(
    cap: bool, in_cycle_2: int, in_cycle_3: int
) -> None:
    pointer = paused_pointer(CYCLE[2], until=MID_2, cap=cap)
    assert pointer.version.anchor == CYCLE[2]
    assert pointer.available(CYCLE[2]) == 0
    assert pointer.available(MID_2) == in_cycle_2
    assert pointer.available(CYCLE[3]) == in_cycle_3


def test_a_cycle_that_starts_just_after_the_pause_begins_grants_nothing() -> None:
    pointer = paused_pointer(CYCLE[2] - timedelta(microseconds=1), until=MID_2, cap=False)
    assert pointer.available(MID_2) == 100  # cycle 1's grant only
    assert pointer.available(CYCLE[3]) == 200


def test_a_pause_at_the_start_keeps_the_first_cycle() -> None:
    pointer = paused_pointer(START, until=MID_1, cap=True)
    assert pointer.available(MID_1) == 100


def test_a_pause_that_ends_mid_cycle_leaves_that_cycle_without_grant() -> None:
    pointer = paused_pointer(MID_1, until=MID_2, cap=True)
    assert pointer.available(MID_2) == 0
    assert state(pointer.version, MID_2, None) == "active"
    assert refusal(pointer.version, pointer.usage, MID_2, None) is not None
    assert pointer.available(CYCLE[3]) == 100


def test_pausing_again_while_paused_only_moves_the_end() -> None:
    pointer = paused_pointer(MID_1, until=MID_2)
    pointer.revise(MID_2 - timedelta(days=1), paused=True, resumes_at=MID_3)
    assert pointer.version.pause == Pause(since=MID_1, until=MID_3)
    pointer.revise(MID_2, paused=True)
    assert pointer.version.pause == Pause(since=MID_1, until=None)


def test_pausing_again_in_a_cycle_that_started_within_the_last_pause_keeps_it_without_grant() -> None:
    pointer = paused_pointer(MID_1, until=MID_2, cap=False)
    pointer.revise(MID_2 + timedelta(days=1), paused=True)
    assert pointer.version.pause == Pause(since=MID_1)
    pointer.revise(MID_2 + timedelta(days=2), paused=False)
    assert pointer.available(MID_2 + timedelta(days=2)) == 100  # cycle 1's grant only
    assert pointer.available(CYCLE[3]) == 200


def test_a_new_pause_after_an_ended_one_begins_now() -> None:
    pointer = paused_pointer(MID_1, until=MID_2, cap=True)
    pointer.revise(MID_3, paused=True)
    assert pointer.version.pause == Pause(since=MID_3)
    assert (pointer.version.anchor, pointer.version.base_cycle) == (CYCLE[3], 3)
    pointer.revise(MID_3 + timedelta(days=1), paused=False)
    assert pointer.available(MID_3 + timedelta(days=1)) == 100


def test_a_pause_before_the_start_withholds_the_cycles_that_start_within_it() -> None:
    early = START - timedelta(days=3)
    pointer = paused_pointer(early, until=MID_1, cap=True)
    assert state(pointer.version, early, None) == "paused"
    assert pointer.version.anchor == START and pointer.version.base_cycle == 1
    assert pointer.balance(MID_1) == Balance(total=0, interval=0, available=0, cycle=1)
    assert pointer.available(CYCLE[2]) == 100
    assert state(pointer.version, START - timedelta(days=1), None) == "paused"


def test_a_pause_ended_before_the_start_changes_nothing() -> None:
    early = START - timedelta(days=3)
    pointer = paused_pointer(early, until=START - timedelta(days=1), cap=True)
    assert state(pointer.version, START - timedelta(days=1), None) == "pending"
    assert pointer.available(START) == 100


def test_a_resume_at_the_moment_of_the_pause_leaves_no_pause() -> None:
    pointer = paused_pointer(MID_1, cap=True)
    pointer.revise(MID_1, paused=False)
    assert pointer.version.pause is None and pointer.version.number == 3
    assert pointer.available(MID_1) == 100


def test_other_changes_keep_the_pause() -> None:
    pointer = paused_pointer(MID_1, until=MID_3, cap=True, cycles=3)
    pointer.revise(MID_2, amount=500, cycles=6)
    assert pointer.version.pause == Pause(since=MID_1, until=MID_3)
    assert pointer.available(MID_3) == 0
    assert pointer.available(CYCLE[4]) == 500


def test_a_change_during_an_open_ended_pause_carries_only_what_was_granted_before_it() -> None:
    pointer = paused_pointer(MID_1, cap=False, cycles=5)
    pointer.revise(MID_3, cycles=6)
    assert (pointer.version.base_cycle, pointer.version.carry) == (3, 100)  # cycle 2 started paused
    pointer.revise(MID_3 + timedelta(days=1), paused=False)
    assert pointer.available(MID_3 + timedelta(days=1)) == 100
    assert pointer.available(CYCLE[4]) == 200


def test_pausing_again_before_the_start_after_an_earlier_pause_ended() -> None:
    pointer = paused_pointer(START - timedelta(days=3), until=START - timedelta(days=2), cap=True)
    pointer.revise(START - timedelta(days=1), paused=True, resumes_at=MID_1)
    assert pointer.version.pause == Pause(since=START - timedelta(days=1), until=MID_1)
    assert pointer.available(MID_1) == 0
    assert pointer.available(CYCLE[2]) == 100


def test_a_pause_with_other_changes_is_one_version() -> None:
    pointer = Pointer.of(cap=True)
    pointer.revise(MID_1, paused=True, cycles=6)
    assert (pointer.version.number, pointer.version.terms.cycles) == (2, 6)
    assert pointer.version.pause == Pause(since=MID_1)


def test_cancelled_and_expired_come_before_paused() -> None:
    pointer = paused_pointer(MID_1, expiry=MID_3)
    assert state(pointer.version, MID_2, MID_1) == "cancelled"
    assert state(pointer.version, MID_3, None) == "expired"
    assert state(pointer.version, MID_3 - timedelta(microseconds=1), None) == "paused"


def test_the_refusal_names_the_pause_and_when_it_ends() -> None:
    until = paused_pointer(MID_1, until=MID_2)
    why = refusal(until.version, until.usage, MID_1, None)
    assert why is not None
    assert (why.code, why.message) == (
        "paused",
        "paused: the payer paused this pointer until 2024-03-10T00:00:00.000Z",
    )
    forever = paused_pointer(MID_1)
    why = refusal(forever.version, forever.usage, MID_1, None)
    assert why is not None
    assert (why.code, why.message) == (
        "paused",
        "paused: the payer paused this pointer until the payer resumes it",
    )
    assert code_of(why.message) == "paused"
    cancelled = refusal(forever.version, forever.usage, MID_1, MID_1)
    assert cancelled is not None and cancelled.code == "cancelled"


def test_resuming_what_is_not_paused_is_refused() -> None:
    pointer = Pointer.of()
    with pytest.raises(InputError) as caught:
        pointer.revise(MID_1, paused=False)
    assert (caught.value.code, caught.value.status) == ("not-paused", 409)
    assert caught.value.detail == "The pointer is not paused."
    ended = paused_pointer(MID_1, until=MID_2)
    with pytest.raises(InputError) as caught:
        ended.revise(MID_2, paused=False)
    assert caught.value.code == "not-paused"


@pytest.mark.parametrize("until", [MID_1, MID_1 - timedelta(microseconds=1)])
def test_a_pause_that_would_end_by_now_is_refused(until: datetime) -> None:
    with pytest.raises(InputError) as caught:
        paused_pointer(MID_1, until=until)
    assert (caught.value.code, caught.value.field) == ("resumes-at-in-past", "resumesAt")
    assert caught.value.detail == "resumesAt must be in the future"


def test_pause_and_changes_are_checked() -> None:
    with pytest.raises(ValueError, match=r"^a pause must end after it begins$"):
        Pause(since=MID_1, until=MID_1)
    with pytest.raises(ValueError, match=r"^a time to resume goes with a pause$"):
        Changes(paused=False, resumes_at=MID_2)
    with pytest.raises(ValueError, match=r"^a time to resume goes with a pause$"):
        Changes(resumes_at=MID_2)
    with pytest.raises(ValueError, match=r"^either set the expiry or clear it, not both$"):
        Changes(expiry=MID_2, clear_expiry=True)
    pause = Pause(since=MID_1, until=MID_2)
    assert [pause.withholds(t) for t in (MID_1, MID_1 + timedelta(microseconds=1), MID_2)] == [
        False,
        True,
        False,
    ]
    assert Pause(since=MID_1).withholds(MID_4)
    assert Pause(since=MID_1).covers(MID_1) and not Pause(since=MID_1).covers(
        MID_1 - timedelta(microseconds=1)
    )
    assert not Pause(since=MID_1, until=MID_2).covers(MID_2)


def test_a_version_keeps_its_pause() -> None:
    terms = make_terms()
    version = Version(terms, 2, START, 1, 0, pause=Pause(MID_1, MID_2))
    assert version.pause == Pause(MID_1, MID_2)


# --- property ----------------------------------------------------------------------------------------

waits = st.builds(lambda hours: ("wait", hours), st.integers(0, 24 * 50))
pulls = st.builds(lambda percent: ("pull", percent), st.integers(1, 100))
pauses = st.builds(lambda hours: ("pause", hours), st.none() | st.integers(1, 24 * 60))
resumes = st.just(("resume", None))
changes = st.builds(lambda cycles: ("cycles", cycles), st.integers(1, 12))


@settings(max_examples=200, deadline=None)
@given(
    amount=st.integers(1, 1000),
    interval=st.sampled_from(INTERVALS),
    cycles=st.integers(1, 8),
    cap=st.booleans(),
    actions=st.lists(st.one_of(waits, pulls, pauses, resumes, changes), min_size=5, max_size=40),
)
def test_pauses_never_let_more_out_than_the_cycles_that_did_not_start_paused(
    amount: int, interval: Any, cycles: int, cap: bool, actions: list[tuple[str, Any]]
) -> None:
    """Against an independent account of the pause windows: nothing is available within one, a cycle
    starting within one grants nothing, and all pulls stay within the grants of the other cycles."""
    pointer = Pointer.of(amount=amount, interval=interval, cycles=cycles, cap=cap)
    now = START - 24 * HOUR
    windows: list[list[datetime | None]] = []  # [since, until): until None = until resumed

    def holding() -> bool:
        return bool(windows) and _covers(windows[-1], now)

    granted: set[int] = set()

    def record_grants() -> None:
        version, c = pointer.version, current_cycle(pointer.version, now)
        for g in range(version.base_cycle, min(c, version.terms.cycles) + 1):
            start, _ = global_cycle_window(version, g)
            if not any(_withholds(window, start) for window in windows):
                granted.add(g)

    for action, argument in actions:
        record_grants()
        if action == "wait":
            now += argument * HOUR
        elif action == "pause":
            until = None if argument is None else now + argument * HOUR
            pointer.revise(now, paused=True, resumes_at=until)
            if holding():
                windows[-1][1] = until
            else:
                windows.append([now, until])
        elif action == "resume":
            if holding():
                pointer.revise(now, paused=False)
                windows[-1][1] = now
            else:
                with pytest.raises(InputError):
                    pointer.revise(now, paused=False)
        elif action == "cycles":
            pointer.revise(now, cycles=argument)
        elif available := pointer.available(now):
            assert not holding()
            pointer.pull(now, max(1, available * argument // 100))
        assert (state(pointer.version, now, None) == "paused") == holding()
        if holding():
            assert pointer.available(now) == 0
        record_grants()
        assert pointer.usage.pulled_total <= amount * len(granted)


def _covers(window: list[datetime | None], moment: datetime) -> bool:
    since, until = window
    assert since is not None
    return since <= moment and (until is None or moment < until)


def _withholds(window: list[datetime | None], start: datetime) -> bool:
    since, until = window
    assert since is not None
    return since < start and (until is None or start < until)
