"""A subscription service's scheduler: pull once per cycle of a pull pointer, and survive restarts.

The state file records the last cycle pulled, written atomically after every pull, so a restarted subscriber
never pulls twice in one cycle. It wakes at the next cycle boundary the agreement gives (re-checking at least
every `max_sleep`, so changes by the payer are noticed), and stops once the agreement is over: cancelled,
expired, or past its last cycle (the SPSP answer's `pull.state`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from spsp_pull.domain.clock import Clock, isoformat_z, parse_timestamp
from spsp_pull.domain.cycles import cycle_window
from spsp_pull.domain.duration import parse_interval
from spsp_pull.payee import PaymentOutcome, SpspDetails, query

log = logging.getLogger(__name__)
Puller = Callable[[int], Awaitable[PaymentOutcome]]
MIN_PAUSE = timedelta(milliseconds=50)
OVER_STATES = frozenset({"cancelled", "ended", "expired"})


class StateFileError(ValueError):
    """The state file belongs to another pointer or cannot be read."""


@dataclass(frozen=True, slots=True)
class SubscriptionEnd:
    """Why `Subscriber.run` returned: `over` is the agreement's state when it ended it (else None: the
    subscription made the pulls it was asked for)."""

    pulls: int
    over: str | None = None


@dataclass
class SubscriptionState:
    pointer: str
    last_cycle: int = 0
    pulls: list[dict[str, object]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path, pointer: str) -> SubscriptionState:
        if not path.exists():
            return cls(pointer)
        try:
            raw = json.loads(path.read_text())
            owner = raw.get("pointer")
            last_cycle = int(raw.get("last_cycle", 0))
            pulls = list(raw.get("pulls", []))
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            raise StateFileError(f"cannot read the state file {path}: {exc}") from None
        if owner != pointer:
            raise StateFileError(
                f"the state file {path} belongs to another pointer ({owner}): "
                "give each subscription its own --state file"
            )
        return cls(pointer, last_cycle, pulls)

    def save(self, path: Path) -> None:
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2))
        os.replace(temporary, path)


class Subscriber:
    def __init__(
        self,
        pointer: str,
        amount: int,
        state_path: Path,
        *,
        puller: Puller,
        clock: Clock,
        max_sleep: timedelta = timedelta(hours=1),
    ) -> None:
        self.pointer = pointer
        self.amount = amount
        self.state_path = state_path
        self.state = SubscriptionState.load(state_path, pointer)
        self._puller = puller
        self._clock = clock
        self._max_sleep = max_sleep

    async def run(self, *, max_cycles: int | None = None) -> SubscriptionEnd:
        """Pull once per cycle until `max_cycles` pulls were made or the agreement is over."""
        pulled = 0
        while max_cycles is None or pulled < max_cycles:
            details = await query(self.pointer)
            if await self.step(details):
                pulled += 1
            over = agreement_over(details)
            if over is not None:
                return SubscriptionEnd(pulled, over)
            if max_cycles is not None and pulled >= max_cycles:
                break
            await asyncio.sleep(self._pause(details).total_seconds())
        return SubscriptionEnd(pulled)

    async def step(self, details: SpspDetails) -> bool:
        """Pull if this cycle has not been pulled yet and something is available; True when it pulled."""
        pull = details.pull or {}
        cycle = int(pull.get("cycle", 0))
        available = int(pull.get("balance", {}).get("available", "0"))
        if cycle <= self.state.last_cycle or available <= 0:
            return False
        outcome = await self._puller(min(self.amount, available))
        if outcome.amount == 0:
            return False
        self.state.last_cycle = cycle
        self.state.pulls.append(
            {
                "cycle": cycle,
                "amount": str(outcome.amount),
                "at": isoformat_z(self._clock.now()),
                "how": outcome.reason,
            }
        )
        self.state.save(self.state_path)
        log.info("cycle %d: pulled %d (%s)", cycle, outcome.amount, outcome.reason)
        return True

    def _pause(self, details: SpspDetails) -> timedelta:
        """Until the next cycle starts (at most `max_sleep`, at least a moment)."""
        now = self._clock.now()
        wake = now + self._max_sleep
        agreement: dict[str, Any] = (details.pull or {}).get("agreement", {})
        cycle = int((details.pull or {}).get("cycle", 0))
        if "start" in agreement and "interval" in agreement:
            next_start = _cycle_start(agreement, cycle + 1)
            if next_start is not None:
                wake = min(wake, next_start)
        return max(MIN_PAUSE, wake - now)


def agreement_over(details: SpspDetails) -> str | None:
    """`cancelled`, `ended` or `expired` once the agreement will grant nothing more, else None. Servers
    without `pull.state` are read from the cycle: past the last one is `ended`."""
    pull = details.pull or {}
    state = pull.get("state")
    if isinstance(state, str):
        return state if state in OVER_STATES else None
    cycles = pull.get("agreement", {}).get("cycles")
    if isinstance(cycles, int) and int(pull.get("cycle", 0)) > cycles:
        return "ended"
    return None


def _cycle_start(agreement: dict[str, Any], cycle: int) -> datetime | None:
    try:
        start = parse_timestamp(agreement["start"], "start")
        interval = parse_interval(agreement["interval"])
        return cycle_window(start, interval, cycle)[0]
    except (ValueError, KeyError):
        return None
