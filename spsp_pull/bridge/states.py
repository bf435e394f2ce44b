"""The payout lifecycle as a pure state machine: which trigger moves which status where, and what the
move does to the payout's reservation against the pointer's allowance.

```
NEW ──approve──▶ QUEUED ──dispatch──▶ IN_FLIGHT ──sent──▶ SENT ──confirm──▶ CONFIRMED
 ├─expire──▶ EXPIRED   ├─cancel──▶ CANCELLED    ├─fail (proof nothing left)──▶ FAILED
 └─cancel──▶ CANCELLED └─fail (pre-dispatch)──▶ FAILED
                                                └─requeue (provably never sent)──▶ QUEUED
```

The reservation is taken on approval (so `QUEUED` and `IN_FLIGHT` always hold one), settled with the
debit when the money provably left (`SENT`), and released only when nothing left (`FAILED`,
`CANCELLED`). An unknown outcome is no trigger at all: the payout stays `IN_FLIGHT` until the reconciler
learns the truth from the backend. Nothing here does I/O; the store applies what this module decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

from spsp_pull.bridge.backends.outcomes import Failed, Outcome, Succeeded, Unknown
from spsp_pull.domain.states import PayoutStatus, ReservationState


class Trigger(StrEnum):
    APPROVE = "approve"
    EXPIRE = "expire"
    CANCEL = "cancel"
    DISPATCH = "dispatch"
    SEND = "send"
    CONFIRM = "confirm"
    FAIL = "fail"
    REQUEUE = "requeue"


class Effect(Enum):
    """What a transition does to the payout's reservation."""

    NONE = "none"
    HOLD = "hold"  # a reservation for the debit must be held from now on (taken just before)
    SETTLE = "settle"  # the debit left: settle the reservation in full
    RELEASE = "release"  # nothing left: give the reservation back


class IllegalTransition(ValueError):
    def __init__(self, status: PayoutStatus, trigger: Trigger) -> None:
        super().__init__(f"a {status} payout cannot {trigger}")
        self.status = status
        self.trigger = trigger


@dataclass(frozen=True, slots=True)
class Transition:
    source: PayoutStatus
    trigger: Trigger
    target: PayoutStatus
    effect: Effect


S = PayoutStatus
_TABLE: dict[tuple[PayoutStatus, Trigger], tuple[PayoutStatus, Effect]] = {
    (S.NEW, Trigger.APPROVE): (S.QUEUED, Effect.HOLD),
    (S.NEW, Trigger.EXPIRE): (S.EXPIRED, Effect.NONE),
    (S.NEW, Trigger.CANCEL): (S.CANCELLED, Effect.NONE),
    (S.QUEUED, Trigger.CANCEL): (S.CANCELLED, Effect.RELEASE),
    (S.QUEUED, Trigger.DISPATCH): (S.IN_FLIGHT, Effect.NONE),
    (S.QUEUED, Trigger.FAIL): (S.FAILED, Effect.RELEASE),
    (S.IN_FLIGHT, Trigger.SEND): (S.SENT, Effect.SETTLE),
    (S.IN_FLIGHT, Trigger.FAIL): (S.FAILED, Effect.RELEASE),
    (S.IN_FLIGHT, Trigger.REQUEUE): (S.QUEUED, Effect.NONE),
    (S.SENT, Trigger.CONFIRM): (S.CONFIRMED, Effect.NONE),
}

TERMINAL = frozenset({S.CONFIRMED, S.EXPIRED, S.CANCELLED, S.FAILED})
"""No trigger leaves these. (A Lightning payout also ends at SENT: it has no confirmations.)"""


def advance(status: PayoutStatus, trigger: Trigger) -> Transition:
    """The transition `trigger` makes from `status`; IllegalTransition if there is none."""
    found = _TABLE.get((status, trigger))
    if found is None:
        raise IllegalTransition(status, trigger)
    return Transition(status, trigger, *found)


def can(status: PayoutStatus, trigger: Trigger) -> bool:
    return (status, trigger) in _TABLE


def reservation_for(status: PayoutStatus) -> ReservationState | None:
    """Where the payout's reservation must stand once the payout is in `status`, None: it holds none (the
    reconciler closes reservations that lag behind their payout, e.g. after a crash between the two
    writes)."""
    if status in (S.NEW, S.EXPIRED):
        return None
    if status in (S.QUEUED, S.IN_FLIGHT):
        return ReservationState.OPEN
    if status in (S.SENT, S.CONFIRMED):
        return ReservationState.SETTLED
    return ReservationState.RELEASED


def trigger_for(outcome: Outcome[object]) -> Trigger | None:
    """The trigger a backend's verdict on a dispatched payout amounts to; None for "unknown"."""
    if isinstance(outcome, Succeeded):
        return Trigger.SEND
    if isinstance(outcome, Failed):
        return Trigger.FAIL
    assert isinstance(outcome, Unknown)
    return None


def after_not_sent(attempts: int, max_attempts: int) -> Trigger:
    """A dispatch that provably sent nothing (a rejected broadcast, a payment the node never started):
    back to the queue for another attempt, or FAILED once `max_attempts` dispatches have been made."""
    return Trigger.FAIL if attempts >= max_attempts else Trigger.REQUEUE
