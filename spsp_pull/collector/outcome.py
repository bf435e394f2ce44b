"""What collecting one pointer came to, and a run's report (counts, JSON, exit status)."""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta


class Kind(enum.StrEnum):
    PULLED = "pulled"  # the cycle's amount arrived (now, or by a pull an interrupted run made)
    PARTIAL = "partial"  # some of it arrived; a later run pulls the rest while the cycle lasts
    NOTHING_DUE = "nothing-due"  # this cycle was collected already, or nothing is available yet
    PAUSED = "paused"  # the payer paused the agreement
    CANCELLED = "cancelled"  # the payer cancelled the pointer
    ENDED = "ended"  # the agreement is over (past its last cycle, used up, or expired) and owes nothing
    FAILED = "failed"  # nothing arrived; `reason` says why, a later run tries again


# Outcomes after which the run did all it could for the pointer.
SETTLED_KINDS = frozenset({Kind.PULLED, Kind.NOTHING_DUE, Kind.PAUSED, Kind.CANCELLED, Kind.ENDED})


@dataclass(frozen=True, slots=True)
class PointerOutcome:
    """`amount` arrived in this run for `cycle` (pointer units, which are ours: same asset), of `target` that
    cycle is owed; `reason` is a refusal code (`spsp_pull.domain.pull_refusal`) or one of the collector's own
    (`not-found`, `bad-pointer`, `not-a-pull-pointer`, `asset-mismatch`, `unreachable`, `spsp-error`,
    `timeout`, `unsettled`, `closed`, `error`); `recovered` when the ledger showed that an interrupted run
    had pulled it."""

    pointer: str
    kind: Kind
    cycle: int | None = None
    amount: int = 0
    target: int = 0
    reason: str | None = None
    detail: str = ""
    recovered: bool = False
    took: timedelta = timedelta(0)  # from its query to its outcome, records included

    def to_json(self) -> dict[str, object]:
        return {
            "pointer": self.pointer,
            "outcome": self.kind.value,
            "cycle": self.cycle,
            "amount": str(self.amount),
            "target": str(self.target),
            "reason": self.reason,
            "detail": self.detail,
            "recovered": self.recovered,
            "tookMs": self.took // timedelta(milliseconds=1),
        }


@dataclass
class Report:
    """Every pointer's outcome, in the list's order."""

    outcomes: list[PointerOutcome] = field(default_factory=list)
    elapsed: timedelta = timedelta(0)
    peak_concurrency: int = 0

    def counts(self) -> dict[str, int]:
        counted = Counter(outcome.kind for outcome in self.outcomes)
        return {kind.value: counted.get(kind, 0) for kind in Kind}

    @property
    def amount(self) -> int:
        return sum(outcome.amount for outcome in self.outcomes)

    @property
    def complete(self) -> bool:
        """Nothing partial, nothing failed: a run again now would pull nothing more."""
        return all(outcome.kind in SETTLED_KINDS for outcome in self.outcomes)

    def to_json(self) -> dict[str, object]:
        return {
            "summary": {
                "pointers": len(self.outcomes),
                **self.counts(),
                "amount": str(self.amount),
                "elapsedMs": self.elapsed // timedelta(milliseconds=1),
                "peakConcurrency": self.peak_concurrency,
            },
            "outcomes": [outcome.to_json() for outcome in self.outcomes],
        }
