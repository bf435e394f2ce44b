"""A subscription service's scheduler for one pointer: pull once per cycle, and survive restarts.

Each cycle is `spsp_pull.collector`'s one-pointer case (`Collector.collect`), with its state in a JSON file:
the record of the cycle last worked on (written before each pull with its intent, and after it with what
arrived) and the list of pulls made. A restarted subscriber never pulls twice in one cycle, and completes
from the server's ledger a pull it was stopped in the middle of. It wakes at the next cycle boundary the
agreement gives (re-checking at least every `max_sleep`, so changes by the payer are noticed), and stops once
the agreement is over: cancelled, expired, or past its last cycle (the SPSP answer's `pull.state`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from spsp_pull.collector.outcome import Kind
from spsp_pull.collector.runner import Collector, Puller
from spsp_pull.collector.sources import PointerItem
from spsp_pull.collector.state import CycleRecord, Intent
from spsp_pull.domain.clock import Clock, isoformat_z, parse_timestamp
from spsp_pull.domain.cycles import cycle_window
from spsp_pull.domain.duration import parse_interval
from spsp_pull.payee import SpspDetails, query

log = logging.getLogger(__name__)
MIN_PAUSE = timedelta(milliseconds=50)
OVER_STATES = frozenset({"cancelled", "ended", "expired"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class StateFileError(ValueError):
    """The state file belongs to another pointer or cannot be read."""


@dataclass(frozen=True, slots=True)
class SubscriptionEnd:
    """Why `Subscriber.run` returned: `over` is the agreement's state when it ended it (else None: the
    subscription made the pulls it was asked for)."""

    pulls: int
    over: str | None = None


class SubscriptionFile:
    """The collector's state store for one pointer, as a JSON file: `pointer`, `last_cycle` (the last cycle
    anything arrived for), `pulls` (cycle, amount, at) and `record` (the collector's record), replaced
    atomically on every save."""

    def __init__(self, path: Path, pointer: str) -> None:
        self.path = path
        self.pointer = pointer
        self.pulls: list[dict[str, object]] = []
        self.record: CycleRecord | None = None
        if path.exists():
            self._read()

    def _read(self) -> None:
        try:
            raw = json.loads(self.path.read_text())
            owner = raw.get("pointer")
            self.pulls = list(raw.get("pulls", []))
            stored = raw.get("record")
            self.record = _record(self.pointer, stored) if stored else self._from_pulls(raw)
        except (OSError, ValueError, AttributeError, TypeError, KeyError) as exc:
            raise StateFileError(f"cannot read the state file {self.path}: {exc}") from None
        if owner != self.pointer:
            raise StateFileError(
                f"the state file {self.path} belongs to another pointer ({owner}): "
                "give each subscription its own --state file"
            )

    def _from_pulls(self, raw: dict[str, Any]) -> CycleRecord | None:
        """A file written before records were kept: its last cycle was collected in full."""
        last_cycle = int(raw.get("last_cycle", 0))
        if last_cycle <= 0:
            return None
        last = int(str(self.pulls[-1]["amount"])) if self.pulls else 0
        return CycleRecord(self.pointer, last_cycle, last, last, last_cycle, EPOCH)

    async def load(self, pointers: Collection[str]) -> dict[str, CycleRecord]:
        return {self.pointer: self.record} if self.record is not None else {}

    async def save(self, record: CycleRecord) -> None:
        previous = self.record
        before = previous.pulled if previous is not None and previous.cycle == record.cycle else 0
        if record.intent is None and record.pulled > before:
            self.pulls.append(
                {
                    "cycle": record.cycle,
                    "amount": str(record.pulled - before),
                    "at": isoformat_z(record.updated_at),
                }
            )
        self.record = record
        document = {
            "pointer": self.pointer,
            "last_cycle": record.paid_cycle,
            "pulls": self.pulls,
            "record": _record_json(record),
        }
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(document, indent=2))
        os.replace(temporary, self.path)


def _record_json(record: CycleRecord) -> dict[str, object]:
    intent = record.intent
    return {
        "cycle": record.cycle,
        "target": str(record.target),
        "pulled": str(record.pulled),
        "paid_cycle": record.paid_cycle,
        "updated_at": isoformat_z(record.updated_at),
        "intent": None
        if intent is None
        else {
            "used": str(intent.used_before),
            "total": str(intent.total_before),
            "at": isoformat_z(intent.at),
        },
    }


def _record(pointer: str, raw: dict[str, Any]) -> CycleRecord:
    intent = raw.get("intent")
    return CycleRecord(
        pointer,
        int(raw["cycle"]),
        int(raw["target"]),
        int(raw["pulled"]),
        int(raw["paid_cycle"]),
        parse_timestamp(raw["updated_at"], "updated_at"),
        None
        if intent is None
        else Intent(int(intent["used"]), int(intent["total"]), parse_timestamp(intent["at"], "at")),
    )


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
        self.state = SubscriptionFile(state_path, pointer)
        records = {pointer: self.state.record} if self.state.record is not None else {}
        self._collector = Collector(state=self.state, records=records, puller=puller, clock=clock)
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
        """Collect this cycle if it is owed; True when something arrived."""
        outcome = await self._collector.collect(PointerItem(self.pointer, self.amount), details)
        if outcome.kind is Kind.FAILED:
            log.warning("cycle %s: %s (%s)", outcome.cycle, outcome.reason, outcome.detail)
        if outcome.amount == 0:
            return False
        log.info("cycle %d: pulled %d (%s)", outcome.cycle, outcome.amount, outcome.kind.value)
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
