"""One authenticated BTP websocket, shared by the client and the server.

It correlates requests and answers by request id, answers incoming ILP Prepares through `dispatch`, and fails
every outstanding request the moment the connection drops. Everything it starts ends before `run` returns.
"""

import asyncio
import contextlib
import enum
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.exceptions import ConnectionClosed

from stream import btp, ilp
from stream.aio.plugin import reject
from stream.errors import DecodeError

# Answers an incoming Prepare (also given as received, for forwarding) with an encoded Fulfill or Reject.
Dispatch = Callable[[ilp.Prepare, bytes], Awaitable[bytes]]

NOT_ACCEPTED = "NotAcceptedError"
# How many incoming requests one connection may have in progress; Prepares beyond that are rejected busy.
MAX_INCOMING = 4096
PING_INTERVAL = timedelta(seconds=20)
CLOSE_TIMEOUT = timedelta(seconds=2)
MAX_FRAME = 2**20
_UINT32_BITS = 32

_log = logging.getLogger(__name__)


class Outcome(enum.Enum):
    """Why a request got no answer."""

    DISCONNECTED = enum.auto()
    TIMED_OUT = enum.auto()


Answer = btp.Response | btp.Error | Outcome


def not_accepted(request_id: int, message: str) -> btp.Error:
    """The BTP Error mini-accounts and ilp-plugin-btp send for refused requests."""
    return btp.Error(request_id, "F00", NOT_ACCEPTED, datetime.now(UTC), message)


def websocket_options(ping_interval: timedelta | None) -> dict[str, Any]:
    """What both ends give `websockets`: no compression, bounded frames, keep-alive pings, a bounded close."""
    ping = None if ping_interval is None else ping_interval.total_seconds()
    return {
        "compression": None,
        "max_size": MAX_FRAME,
        "ping_interval": ping,
        "ping_timeout": ping,
        "close_timeout": CLOSE_TIMEOUT.total_seconds(),
    }


def _settle(future: "asyncio.Future[Answer]", answer: Answer) -> None:
    if not future.done():
        future.set_result(answer)


class BtpSession:
    def __init__(
        self,
        ws: Connection,
        *,
        address: str = "",
        dispatch: Dispatch | None = None,
        busy_code: str = ilp.ErrorCode.T02_PEER_BUSY,
        max_incoming: int = MAX_INCOMING,
    ) -> None:
        self.address = address
        """Our ILP address, used as `triggeredBy` of the Rejects this session makes up."""
        self.dispatch = dispatch
        """Answers incoming Prepares; without it they get a BTP Error, as from ilp-plugin-btp."""
        self._busy_code = busy_code
        self._max_incoming = max_incoming
        self._ws = ws
        self._loop = asyncio.get_running_loop()
        self._pending: dict[int, asyncio.Future[Answer]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._open = True

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    # --- requests -------------------------------------------------------------------------------------------

    def next_request_id(self) -> int:
        """A random uint32 that no outstanding request of this session uses."""
        while True:
            request_id = random.getrandbits(_UINT32_BITS)
            if request_id not in self._pending:
                return request_id

    async def request(self, message: btp.Message, timeout: timedelta) -> Answer:  # noqa: ASYNC109
        """Sends `message`; waits at most `timeout` for the Response or Error with its request id."""
        if not self._open:
            return Outcome.DISCONNECTED
        request_id = message.request_id
        future: asyncio.Future[Answer] = self._loop.create_future()
        self._pending[request_id] = future
        timer = self._loop.call_later(timeout.total_seconds(), _settle, future, Outcome.TIMED_OUT)
        try:
            await self._ws.send(btp.encode(message))
            return await future
        except ConnectionClosed:
            return Outcome.DISCONNECTED
        finally:
            timer.cancel()
            del self._pending[request_id]

    async def call(self, prepare: bytes, timeout: timedelta) -> bytes:  # noqa: ASYNC109
        """Sends an encoded Prepare; the peer's encoded answer, or a Reject when there is none."""
        answer = await self.request(btp.ilp_message(self.next_request_id(), prepare), timeout)
        if isinstance(answer, btp.Response):
            payload = btp.ilp_payload(answer)
            if payload is not None:
                return payload
            return self._reject(ilp.ErrorCode.T00_INTERNAL_ERROR, "peer answered without an ILP packet")
        if isinstance(answer, btp.Error):
            return self._reject(
                ilp.ErrorCode.T00_INTERNAL_ERROR, f"peer refused the packet: {answer.code} {answer.name}"
            )
        if answer is Outcome.TIMED_OUT:
            return self._reject(ilp.ErrorCode.R00_TRANSFER_TIMED_OUT, "peer did not answer in time")
        return self._reject(ilp.ErrorCode.T01_PEER_UNREACHABLE, "peer disconnected")

    def _reject(self, code: str, message: str) -> bytes:
        return ilp.encode(reject(code, self.address, message))

    # --- receiving ------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Reads packets until the connection ends; then fails what is outstanding and stops its tasks."""
        try:
            async for data in self._ws:
                if isinstance(data, str) or not self._receive(data):
                    break
        except ConnectionClosed:
            pass
        finally:
            self._open = False
            for future in self._pending.values():
                _settle(future, Outcome.DISCONNECTED)
            await self._stop_tasks()
            await self._ws.close()

    def _receive(self, data: bytes) -> bool:
        """Handles one frame; False when it cannot be parsed (the peer is then disconnected, as JS does)."""
        try:
            packet = btp.decode(data)
        except DecodeError:
            _log.warning("closing a BTP connection that sent an unreadable frame")
            return False
        if isinstance(packet, btp.Response | btp.Error):
            future = self._pending.get(packet.request_id)
            if future is not None:
                _settle(future, packet)
        elif isinstance(packet, btp.Message):
            payload = btp.ilp_payload(packet)
            if payload is None:
                self._spawn(self._send(not_accepted(packet.request_id, "no ilp protocol data")))
            elif self.dispatch is None:
                self._spawn(self._send(not_accepted(packet.request_id, "no request handler registered")))
            elif len(self._tasks) >= self._max_incoming:
                busy = self._reject(self._busy_code, "too many Prepares in flight")
                self._spawn(self._send(btp.ilp_response(packet.request_id, busy)))
            else:
                self._spawn(self._answer(self.dispatch, packet.request_id, payload))
        else:
            self._spawn(self._send(not_accepted(packet.request_id, "transfers are not supported")))
        return True

    async def _answer(self, dispatch: Dispatch, request_id: int, payload: bytes) -> None:
        try:
            prepare = ilp.decode_prepare(payload)
        except DecodeError:
            reply = self._reject(ilp.ErrorCode.F01_INVALID_PACKET, "invalid ILP Prepare")
        else:
            reply = await dispatch(prepare, payload)
        await self._send(btp.ilp_response(request_id, reply))

    async def _send(self, packet: btp.BtpPacket) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(btp.encode(packet))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: "asyncio.Task[None]") -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("BTP task failed", exc_info=task.exception())

    async def _stop_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        """Closes the websocket; `run` then returns."""
        await self._ws.close()
