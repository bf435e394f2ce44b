"""Drives a sans-I/O `StreamConnection` over an `IlpLink`: sends what it polls, feeds back replies, runs its
timers, and hands its events to the owner. All protocol decisions stay in the connection.

Every reply the link gives reaches the connection, whatever state it is in: a Fulfill the link returned was
accepted (paid), so its owner must hear of it (`MoneySent`) to account for it — also while stopping."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from stream import ilp
from stream.aio.plugin import IlpLink, reject, time_left
from stream.connection import ConnectionClosed, Event, OutgoingPrepare, StreamConnection

EventHandler = Callable[[list[Event]], None]
Clock = Callable[[], datetime]

# How long `stop` waits beyond the latest expiry of what is in flight for the link to give its answer.
STOP_GRACE = timedelta(seconds=1)

_log = logging.getLogger(__name__)


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
        self._sends: dict[asyncio.Task[None], OutgoingPrepare] = {}
        self._stopping = False
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
        """Stop driving: nothing new is sent, and the Prepares in flight are waited for, so that every Fulfill
        the link accepts reaches the connection and its owner (shutdown must not lose a debit).

        Each ends by its expiry (the link answers R00 then, and refuses a Fulfill after it). One the link
        still holds `STOP_GRACE` after the latest expiry is given up as R00: whatever answer it might still
        get is past its expiry, and the link refuses that."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._disarm_timer()
        # Nothing is added to `_sends` from here on: the pump is gone and replies no longer send more.
        if pending := [task for task in self._sends if not task.done()]:
            latest = max(time_left(self._sends[task].prepare) for task in pending)
            await asyncio.wait(pending, timeout=(max(latest, timedelta(0)) + STOP_GRACE).total_seconds())
        abandoned = [(task, out) for task, out in self._sends.items() if not task.done()]
        for task, _ in abandoned:
            task.cancel()
        await asyncio.gather(*(task for task, _ in abandoned), return_exceptions=True)
        expired = reject(
            ilp.ErrorCode.R00_TRANSFER_TIMED_OUT, self.connection.local_address, "no answer before expiry"
        )
        for _, out in abandoned:
            self.connection.handle_reply(out.id, expired, self._now())  # ignored if it was answered
        self._dispatch()
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
        self._sends[task] = out
        task.add_done_callback(self._forget_send)

    def _forget_send(self, task: asyncio.Task[None]) -> None:
        self._sends.pop(task, None)

    async def _exchange(self, out: OutgoingPrepare) -> None:
        try:
            reply = await self._link.send(out.prepare)
        except Exception:
            # A link that raises handed back no Fulfill: nothing was accepted.
            _log.exception("ILP link failed to send a Prepare")
            reply = reject(ilp.ErrorCode.T00_INTERNAL_ERROR, self.connection.local_address, "link failed")
        connection = self.connection
        now = self._now()
        connection.handle_reply(out.id, reply, now)
        self._dispatch()
        if self._stopping or isinstance(reply, ilp.Reject) or not connection.is_open:
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
