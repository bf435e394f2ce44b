"""The connection budget: places per kind and per holder (an account's pushes, a pointer's pulls), idle
connections making room, fairness between holders; each rule on its own, then every sequence hypothesis finds
against a plain reference model."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spsp_pull.config import from_environment
from spsp_pull.config_error import ConfigError
from spsp_pull.ilp.connection_budget import Admitted, ConnectionBudget, ConnectionLimits, Kind, Refused

T0 = datetime(2026, 1, 1, tzinfo=UTC)
IDLE = timedelta(seconds=10)


def budget(pull: int = 20, push: int = 20, per_account: int = 5) -> ConnectionBudget:
    """Limits with `per_account` for pushes and pulls alike (`per_pointer`): the rules are the same."""
    limits = ConnectionLimits(
        pull=pull, push=push, per_account=per_account, per_pointer=per_account, evict_idle_after=IDLE
    )
    return ConnectionBudget(limits)


def fill(
    b: ConnectionBudget, kind: Kind, account: str | None, n: int, prefix: str, now: datetime = T0
) -> None:
    for i in range(n):
        assert b.admit(f"{prefix}{i}", kind, account, now) == Admitted()


def test_pushes_never_take_a_pull_place() -> None:
    b = budget(pull=3, push=3)
    fill(b, Kind.PUSH, None, 3, "push")
    assert isinstance(b.admit("push-more", Kind.PUSH, None, T0), Refused)
    fill(b, Kind.PULL, "payee", 3, "pull")
    assert (b.count(Kind.PUSH), b.count(Kind.PULL), len(b)) == (3, 3, 6)


def test_an_account_holds_at_most_per_account_places_of_each_kind() -> None:
    b = budget(per_account=2)
    fill(b, Kind.PULL, "flood", 2, "pull")
    refused = b.admit("pull-3", Kind.PULL, "flood", T0)
    assert refused == Refused("this pointer holds 2 pull connections, the most allowed")
    fill(b, Kind.PUSH, "flood", 2, "push")  # its pushes have their own count
    assert b.admit("other", Kind.PULL, "other", T0) == Admitted()
    assert (b.held_by(Kind.PULL, "flood"), b.held_by(Kind.PUSH, "flood"), b.held_by(Kind.PULL, "other")) == (
        2,
        2,
        1,
    )


def test_an_account_at_its_cap_replaces_its_own_idle_connection() -> None:
    b = budget(per_account=2)
    fill(b, Kind.PULL, "a", 2, "a")
    b.touch("a0", T0 + IDLE)  # a1 is now the least recently active
    assert b.admit("a2", Kind.PULL, "a", T0 + IDLE) == Admitted(evicted="a1")
    assert "a1" not in b and "a0" in b and b.held_by(Kind.PULL, "a") == 2
    # a0 was touched at T0 + IDLE, a2 admitted then: neither is idle long enough before T0 + 2 * IDLE
    assert isinstance(b.admit("a3", Kind.PULL, "a", T0 + 2 * IDLE - timedelta(microseconds=1)), Refused)


def test_a_full_kind_gives_the_place_of_its_least_recently_active_idle_connection() -> None:
    b = budget(push=3)
    fill(b, Kind.PUSH, None, 3, "p")
    b.touch("p0", T0 + timedelta(seconds=1))
    assert isinstance(b.admit("new", Kind.PUSH, None, T0 + IDLE - timedelta(microseconds=1)), Refused)
    assert b.admit("new", Kind.PUSH, None, T0 + IDLE) == Admitted(evicted="p1")
    assert b.admit("newer", Kind.PUSH, None, T0 + IDLE) == Admitted(evicted="p2")
    assert b.admit("newest", Kind.PUSH, None, T0 + IDLE) == Refused("all 3 push connection places are taken")


def test_a_full_kind_takes_from_the_largest_holder_while_it_holds_more_than_the_newcomer_plus_one() -> None:
    b = budget(pull=6, per_account=5)
    fill(b, Kind.PULL, "flood", 5, "f")
    fill(b, Kind.PULL, "payee", 1, "p")
    # Nothing is idle: fairness decides. The flood gives up its least recently active connections.
    b.touch("f0", T0)
    assert b.admit("q0", Kind.PULL, "other", T0) == Admitted(evicted="f1")
    assert b.admit("q1", Kind.PULL, "other", T0) == Admitted(evicted="f2")
    # flood 3, other 2: taking one more would leave other above flood
    assert isinstance(b.admit("q2", Kind.PULL, "other", T0), Refused)
    assert b.admit("z0", Kind.PULL, "third", T0) == Admitted(evicted="f3")
    # flood 2, other 2, payee 1, third 1: a newcomer (0) may take from an account holding 2
    evicted = b.admit("w0", Kind.PULL, "fourth", T0)
    assert isinstance(evicted, Admitted) and evicted.evicted in {"f0", "f4", "q0", "q1"}
    assert b.held_by(Kind.PULL, "payee") == 1


def test_places_shared_one_each_are_never_taken_for_fairness() -> None:
    b = budget(pull=4)
    for i in range(4):
        assert b.admit(f"c{i}", Kind.PULL, f"acct{i}", T0) == Admitted()
    assert isinstance(b.admit("sybil", Kind.PULL, "sybil", T0), Refused)
    assert isinstance(b.admit("anon", Kind.PULL, None, T0), Refused)


def test_unattributed_connections_are_not_capped_per_account_nor_taken_for_fairness() -> None:
    b = budget(pull=10, per_account=2)
    fill(b, Kind.PULL, None, 10, "u")
    assert isinstance(b.admit("named", Kind.PULL, "named", T0), Refused)
    assert b.admit("named", Kind.PULL, "named", T0 + IDLE) == Admitted(evicted="u0")


def test_release_frees_the_place_and_ignores_unknown_or_evicted_keys() -> None:
    b = budget(pull=1, per_account=1)
    assert b.admit("a", Kind.PULL, "x", T0) == Admitted()
    b.release("a")
    b.release("a")
    b.release("never")
    b.touch("never", T0)
    assert (len(b), b.count(Kind.PULL), b.held_by(Kind.PULL, "x")) == (0, 0, 0)
    assert b.admit("b", Kind.PULL, "x", T0) == Admitted()


def test_a_key_holds_one_place_only() -> None:
    b = budget()
    b.admit("a", Kind.PULL, "x", T0)
    with pytest.raises(ValueError, match="already holds a place"):
        b.admit("a", Kind.PUSH, "x", T0)


@pytest.mark.parametrize(
    "limits",
    [
        {"pull": 0},
        {"push": 0},
        {"per_account": 0},
        {"per_pointer": 0},
        {"idle_timeout": timedelta(0)},
        {"evict_idle_after": timedelta(seconds=-1)},
    ],
)
def test_limits_that_cannot_work_are_refused(limits: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        ConnectionLimits(**limits)  # type: ignore[arg-type]


def test_limits_come_from_the_environment() -> None:
    env = {
        "SPSP_MAX_PULL_CONNECTIONS": "20",
        "SPSP_MAX_PUSH_CONNECTIONS": "30",
        "SPSP_MAX_CONNECTIONS_PER_ACCOUNT": "5",
        "SPSP_STREAM_IDLE_TIMEOUT": "45",
        "SPSP_STREAM_EVICT_IDLE_AFTER": "3",
        "SPSP_MAX_CONNECTIONS_PER_POINTER": "7",
    }
    limits = from_environment(env).connection_limits
    assert limits == ConnectionLimits(20, 30, 5, timedelta(seconds=45), timedelta(seconds=3), 7)
    assert from_environment({}).connection_limits == ConnectionLimits()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SPSP_MAX_PULL_CONNECTIONS", "0"),
        ("SPSP_MAX_PUSH_CONNECTIONS", "many"),
        ("SPSP_STREAM_IDLE_TIMEOUT", "-1"),
    ],
)
def test_limits_in_the_environment_that_cannot_work_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        from_environment({name: value})


# --- every sequence, against a reference model ------------------------------------------------------------


@dataclass
class _Model:
    """The rules written as plainly as possible: linear scans over a list in order of last activity."""

    limits: ConnectionLimits
    # (key, kind, account, last_active), least recently active first
    table: list[tuple[str, Kind, str | None, datetime]] = field(default_factory=list)

    def held(self, kind: Kind, account: str | None) -> int:
        return sum(1 for _, k, a, _ in self.table if k is kind and a == account and a is not None)

    def idle_first(self, rows: list[tuple[str, Kind, str | None, datetime]], now: datetime) -> str | None:
        if rows and now - rows[0][3] >= self.limits.evict_idle_after:
            return rows[0][0]
        return None

    def choices(self, kind: Kind, account: str | None, now: datetime) -> set[str | None] | None:
        """The connections that may make room (None: no eviction needed); None when it must be refused."""
        held = self.held(kind, account)
        of_kind = [row for row in self.table if row[1] is kind]
        if account is not None and held >= self.limits.per_holder(kind):
            own = self.idle_first([row for row in of_kind if row[2] == account], now)
            return None if own is None else {own}
        if len(of_kind) < self.limits.of(kind):
            return {None}
        idle = self.idle_first(of_kind, now)
        if idle is not None:
            return {idle}
        counts: dict[str, int] = {}
        for _, _, a, _ in of_kind:
            if a is not None:
                counts[a] = counts.get(a, 0) + 1
        most = max(counts.values(), default=0)
        if most <= held + 1:
            return None
        firsts: set[str | None] = set()
        for top in (a for a, n in counts.items() if n == most):
            firsts.add(next(key for key, _, a, _ in of_kind if a == top))
        return firsts

    def remove(self, key: str) -> None:
        self.table = [row for row in self.table if row[0] != key]

    def touch(self, key: str, now: datetime) -> None:
        for row in self.table:
            if row[0] == key:
                self.remove(key)
                self.table.append((key, row[1], row[2], max(row[3], now)))
                return


_ACCOUNTS = st.sampled_from(["a", "b", "c", "d", None])
_OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("admit"), st.sampled_from(list(Kind)), _ACCOUNTS),
        st.tuples(st.just("touch"), st.integers(0, 60)),
        st.tuples(st.just("release"), st.integers(0, 60)),
        st.tuples(st.just("wait"), st.integers(0, 15)),
    ),
    max_size=120,
)


@settings(max_examples=400, deadline=None)
@given(
    pull=st.integers(1, 6),
    push=st.integers(1, 6),
    per_account=st.integers(1, 4),
    per_pointer=st.integers(1, 4),
    operations=_OPERATIONS,
)
def test_every_sequence_follows_the_rules(
    pull: int, push: int, per_account: int, per_pointer: int, operations: list[tuple[object, ...]]
) -> None:
    limits = ConnectionLimits(
        pull=pull, push=push, per_account=per_account, per_pointer=per_pointer, evict_idle_after=IDLE
    )
    b = ConnectionBudget(limits)
    model = _Model(limits)
    now = T0
    made = 0
    for op in operations:
        if op[0] == "admit":
            kind, account = op[1], op[2]
            assert isinstance(kind, Kind) and (account is None or isinstance(account, str))
            key = f"k{made}"
            made += 1
            allowed = model.choices(kind, account, now)
            decision = b.admit(key, kind, account, now)
            if allowed is None:
                assert isinstance(decision, Refused)
                continue
            assert isinstance(decision, Admitted) and decision.evicted in allowed
            if decision.evicted is not None:
                model.remove(decision.evicted)
            model.table.append((key, kind, account, now))
        elif op[0] == "touch":
            key = f"k{op[1]}"
            b.touch(key, now)
            model.touch(key, now)
        elif op[0] == "release":
            key = f"k{op[1]}"
            b.release(key)
            model.remove(key)
        else:
            assert isinstance(op[1], int)
            now += timedelta(seconds=op[1])
        assert len(b) == len(model.table)
        for kind in Kind:
            assert b.count(kind) == sum(1 for row in model.table if row[1] is kind) <= limits.of(kind)
            for account in ("a", "b", "c", "d"):
                assert b.held_by(kind, account) == model.held(kind, account) <= limits.per_holder(kind)
        assert all(row[0] in b for row in model.table)
