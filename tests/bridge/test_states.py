"""The payout state machine, exhaustively: every allowed transition and every forbidden one."""

from __future__ import annotations

import itertools

import pytest

from spsp_pull.bridge.backends.outcomes import Failed, Succeeded, Unknown
from spsp_pull.bridge.states import (
    TERMINAL,
    Effect,
    IllegalTransition,
    Trigger,
    advance,
    after_not_sent,
    can,
    reservation_for,
    trigger_for,
)
from spsp_pull.domain.states import PayoutStatus, ReservationState

S, T = PayoutStatus, Trigger
ALLOWED = {
    (S.NEW, T.APPROVE): (S.QUEUED, Effect.HOLD),
    (S.NEW, T.EXPIRE): (S.EXPIRED, Effect.NONE),
    (S.NEW, T.CANCEL): (S.CANCELLED, Effect.NONE),
    (S.QUEUED, T.CANCEL): (S.CANCELLED, Effect.RELEASE),
    (S.QUEUED, T.DISPATCH): (S.IN_FLIGHT, Effect.NONE),
    (S.QUEUED, T.FAIL): (S.FAILED, Effect.RELEASE),
    (S.IN_FLIGHT, T.SEND): (S.SENT, Effect.SETTLE),
    (S.IN_FLIGHT, T.FAIL): (S.FAILED, Effect.RELEASE),
    (S.IN_FLIGHT, T.REQUEUE): (S.QUEUED, Effect.NONE),
    (S.SENT, T.CONFIRM): (S.CONFIRMED, Effect.NONE),
}


@pytest.mark.parametrize(("status", "trigger"), list(itertools.product(PayoutStatus, Trigger)))
def test_every_pair(status: PayoutStatus, trigger: Trigger) -> None:
    expected = ALLOWED.get((status, trigger))
    assert can(status, trigger) is (expected is not None)
    if expected is None:
        with pytest.raises(IllegalTransition):
            advance(status, trigger)
        return
    transition = advance(status, trigger)
    assert (transition.target, transition.effect) == expected
    assert (transition.source, transition.trigger) == (status, trigger)


def test_terminal_states_have_no_way_out() -> None:
    for status in TERMINAL:
        assert not any(can(status, trigger) for trigger in Trigger)


def test_every_transition_lands_where_the_reservation_rule_expects() -> None:
    """HOLD lands on an open reservation, SETTLE on settled, RELEASE on released, NONE changes nothing."""
    effects = {
        Effect.HOLD: ReservationState.OPEN,
        Effect.SETTLE: ReservationState.SETTLED,
        Effect.RELEASE: ReservationState.RELEASED,
    }
    for (status, trigger), (target, effect) in ALLOWED.items():
        if effect is Effect.NONE:
            before, after = reservation_for(status), reservation_for(target)
            assert before == after or (status, target) == (S.NEW, S.EXPIRED) or before is None
        else:
            assert reservation_for(target) is effects[effect], (status, trigger)


def test_only_a_verdict_moves_a_dispatched_payout() -> None:
    assert trigger_for(Succeeded("txid")) is T.SEND
    assert trigger_for(Failed("rpc-26")) is T.FAIL
    assert trigger_for(Unknown("time-out")) is None
    assert after_not_sent(1, 3) is T.REQUEUE
    assert after_not_sent(3, 3) is T.FAIL
