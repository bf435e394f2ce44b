"""Drives a sans-I/O `StreamConnection` over an `IlpLink`: sends what it polls, feeds back replies, runs its
timers, and hands its events to the owner. All protocol decisions stay in the connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from stream import ilp
from stream.aio.plugin import IlpLink
from stream.connection import ConnectionClosed, Event, OutgoingPrepare, StreamConnection

EventHandler = Callable[[list[Event]], None]
Clock = Callable[[], datetime]


def system_now() -> datetime:
    return datetime.now(UTC)


class ConnectionRunner:
    def __init__(
        self,
        connection: StreamConnection,
        link: IlpLink,
        *,
        on_events: EventHandler,
        now: Clock = system_now,
    ) -> None:
        self.connection = connection
        self._link = link
        self._on_events = on_events
        self._now = now
        self._wake = asyncio.Event()
        self._sends: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.closed = asyncio.Event()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pump())

    def kick(self) -> None:
        """Something changed (limits, close requested): poll the connection again."""
        self._wake.set()

    def handle_prepare(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        reply = self.connection.handle_prepare(prepare, self._now())
        self._dispatch()
        self._wake.set()
        return reply

    async def wait_closed(self) -> None:
        await self.closed.wait()

    async def stop(self) -> None:
        """Stop driving at once (in-flight Prepares are abandoned): for shutdown only."""
        for task in [*self._sends, *([self._task] if self._task else [])]:
            task.cancel()
        for task in [*self._sends, *([self._task] if self._task else [])]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.closed.set()

    async def _pump(self) -> None:
        connection = self.connection
        try:
            while not connection.is_closed:
                self._wake.clear()
                while (out := connection.poll(self._now())) is not None:
                    self._send(out)
                self._dispatch()
                if connection.is_closed:
                    break
                wakeup = connection.next_wakeup()
                if self._wake.is_set():
                    continue
                if wakeup is not None:
                    self._arm_timer(wakeup - self._now())
                await self._wake.wait()
        finally:
            self._disarm_timer()
        self._dispatch()
        self.closed.set()

    def _arm_timer(self, delay: timedelta) -> None:
        """Wake the pump after `delay` (at once if it has passed). This loop turns once per packet and the
        wakeup (mostly the idle timeout) keeps moving later: a timer already due no later than that is kept
        (an early wakeup only makes the pump look again), rather than a new timer (or `asyncio.wait_for`'s
        task) each turn."""
        loop = asyncio.get_running_loop()
        when = loop.time() + max(delay, timedelta(0)).total_seconds()
        if self._timer is not None and self._timer.when() <= when:
            return
        self._disarm_timer()
        self._timer = loop.call_at(when, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self._wake.set()

    def _disarm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send(self, out: OutgoingPrepare) -> None:
        task = asyncio.get_running_loop().create_task(self._exchange(out))
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _exchange(self, out: OutgoingPrepare) -> None:
        reply = await self._link.send(out.prepare)
        connection = self.connection
        now = self._now()
        connection.handle_reply(out.id, reply, now)
        self._dispatch()
        if isinstance(reply, ilp.Reject) or not connection.is_open:
            # Back-off timers, closing: the pump decides.
            self._wake.set()
            return
        # A Fulfill frees a slot: send what is ready at once rather than through a turn of the pump (one task
        # switch less per packet). The pump still runs on kicks, timers and everything else.
        while (following := connection.poll(now)) is not None:
            self._send(following)
        self._dispatch()

    def _dispatch(self) -> None:
        events = self.connection.drain_events()
        if events:
            self._on_events(events)
            if any(isinstance(e, ConnectionClosed) for e in events):
                self._wake.set()
