"""Collecting: one pointer at a time (`Collector.collect`, which `spsp-pull subscribe` uses each cycle), and a
whole list with a bounded number of pulls at once over one BTP connection (`collect`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import timedelta

import aiohttp

from spsp_pull.collector import plan
from spsp_pull.collector.outcome import Kind, PointerOutcome, Report
from spsp_pull.collector.sources import PointerItem, unique
from spsp_pull.collector.state import CycleRecord, StateStore
from spsp_pull.domain.clock import Clock, SystemClock
from spsp_pull.payee import (
    DEFAULT_TIME_LIMIT,
    PaymentOutcome,
    PointerNotFound,
    SpspDetails,
    SpspError,
    SpspUnreachable,
    joined_router,
    pull_on,
    query,
)
from spsp_pull.payment_pointer import InvalidPaymentPointer

Puller = Callable[[SpspDetails, int], Awaitable[PaymentOutcome]]
OnOutcome = Callable[[PointerOutcome], None]
SETTLE_WAIT = timedelta(seconds=90)
log = logging.getLogger(__name__)
SETTLE_POLL = timedelta(seconds=1)

__all__ = ["Collector", "PointerItem", "collect"]


class Collector:
    """Collects one pointer at a time against `state`; `records` are the pointers' records already loaded
    (kept up to date here). `asset` is our account's (a pointer in another is refused), None to skip that
    check. A pull interrupted by an earlier run is first completed from the ledger, waiting up to
    `settle_wait` for the server to settle it."""

    def __init__(
        self,
        *,
        state: StateStore,
        records: dict[str, CycleRecord],
        puller: Puller,
        asset: tuple[str, int] | None = None,
        clock: Clock | None = None,
        http: aiohttp.ClientSession | None = None,
        settle_wait: timedelta = SETTLE_WAIT,
        settle_poll: timedelta = SETTLE_POLL,
    ) -> None:
        self._state = state
        self._records = records
        self._puller = puller
        self._asset = asset
        self._clock = clock or SystemClock()
        self._http = http
        self._settle_wait = settle_wait
        self._settle_poll = settle_poll

    async def collect(self, item: PointerItem, details: SpspDetails | None = None) -> PointerOutcome:
        """Pull what `item`'s pointer is owed now (`details`: its SPSP answer, if already asked)."""
        started = self._clock.now()
        outcome = await self._collect(item, details)
        return replace(outcome, took=self._clock.now() - started)

    async def _collect(self, item: PointerItem, details: SpspDetails | None) -> PointerOutcome:
        pointer = item.pointer
        try:
            if details is None:
                details = await self._query(pointer)
            view = self._view(details)
            record = self._records.get(pointer)
            recovered = 0
            if record is not None and record.intent is not None:
                record, view, details = await self._resolve(record, view, details)
                recovered = record.pulled - (self._records[pointer].pulled)
                await self._save(record)
        except _Failed as failed:
            return PointerOutcome(pointer, Kind.FAILED, reason=failed.reason, detail=failed.detail)
        decision = plan.decide(view, record, item.amount, self._asset)
        if isinstance(decision, PointerOutcome):
            if recovered and record is not None and decision.kind is Kind.NOTHING_DUE:
                return plan.pulled_outcome(pointer, record, recovered, recovered=True)
            return PointerOutcome(
                pointer, decision.kind, decision.cycle, 0, decision.target, decision.reason, decision.detail
            )
        intent = plan.begin(record, pointer, decision, view, self._clock.now())
        await self._save(intent)
        try:
            outcome = await self._puller(details, decision.amount)
        except Exception as exc:  # the intent stays: the next run reads this pull from the ledger
            log.exception("pulling %s failed", pointer)
            detail = f"{type(exc).__name__}: {exc}"
            return PointerOutcome(pointer, Kind.FAILED, decision.cycle, 0, decision.target, "error", detail)
        done = plan.finish(intent, outcome.amount, self._clock.now())
        await self._save(done)
        if outcome.amount == 0:
            return plan.refused_outcome(pointer, done, outcome.reason, outcome.detail)
        return plan.pulled_outcome(pointer, done, outcome.amount + recovered, recovered=recovered > 0)

    async def _save(self, record: CycleRecord) -> None:
        await self._state.save(record)
        self._records[record.pointer] = record

    async def _query(self, pointer: str) -> SpspDetails:
        try:
            return await query(pointer, session=self._http)
        except InvalidPaymentPointer as exc:
            raise _Failed("bad-pointer", str(exc)) from None
        except PointerNotFound as exc:
            raise _Failed("not-found", str(exc)) from None
        except SpspUnreachable as exc:
            raise _Failed("unreachable", str(exc)) from None
        except SpspError as exc:
            raise _Failed("spsp-error", str(exc)) from None

    @staticmethod
    def _view(details: SpspDetails) -> plan.View:
        if details.pull is None:
            raise _Failed("not-a-pull-pointer", "its SPSP answer has no pull object")
        try:
            return plan.View.of(details.pull)
        except (KeyError, TypeError, ValueError) as exc:
            raise _Failed("spsp-error", f"the SPSP answer's pull object lacks {exc}") from None

    async def _resolve(
        self, record: CycleRecord, view: plan.View, details: SpspDetails
    ) -> tuple[CycleRecord, plan.View, SpspDetails]:
        """The record of an interrupted pull, completed from the ledger once its reservation is settled."""
        deadline = self._clock.now() + self._settle_wait
        while (resolved := plan.resolve(record, view)) is None:
            if self._clock.now() >= deadline:
                raise _Failed(
                    "unsettled",
                    "a pull of an earlier run is still settling on the server; run again in a minute",
                )
            await asyncio.sleep(self._settle_poll.total_seconds())
            details = await self._query(record.pointer)
            view = self._view(details)
        return resolved, view, details


class _Failed(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


async def collect(
    items: Sequence[PointerItem],
    *,
    btp_url: str,
    state: StateStore,
    concurrency: int = 50,
    time_limit: timedelta = DEFAULT_TIME_LIMIT,
    max_in_flight: int = 1,
    on_outcome: OnOutcome | None = None,
    clock: Clock | None = None,
    settle_wait: timedelta = SETTLE_WAIT,
) -> Report:
    """Collect every pointer of `items`, at most `concurrency` at once, all over one BTP connection."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    items = unique(items)
    clock = clock or SystemClock()
    started = clock.now()
    records = await state.load([item.pointer for item in items])
    report = Report()
    http_limits = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with (
        joined_router(btp_url) as (router, asset),
        aiohttp.ClientSession(connector=http_limits, timeout=aiohttp.ClientTimeout(total=30)) as http,
    ):

        async def puller(details: SpspDetails, amount: int) -> PaymentOutcome:
            return await pull_on(
                router, asset, details, amount, time_limit=time_limit, max_in_flight=max_in_flight
            )

        collector = Collector(
            state=state,
            records=records,
            puller=puller,
            asset=(asset.code, asset.scale),
            clock=clock,
            http=http,
            settle_wait=settle_wait,
        )
        pending = iter(enumerate(items))
        outcomes: dict[int, PointerOutcome] = {}

        async def worker() -> None:
            for index, item in pending:
                outcome = outcomes[index] = await collector.collect(item)
                if on_outcome is not None:
                    on_outcome(outcome)

        workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(items)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*workers, return_exceptions=True)
        report.peak_concurrency = router.peak
    report.outcomes = [outcomes[index] for index in sorted(outcomes)]
    report.elapsed = clock.now() - started
    return report
