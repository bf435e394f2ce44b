"""A BTP client (as ilp-plugin-btp): one websocket to a parent, authenticated, reconnected when it drops.

    async with BtpClient("btp+ws://alice:secret@127.0.0.1:7768") as client:
        info = await client.ildcp()          # our address and asset, from the parent
        client.set_handler(handle_prepare)   # Prepares sent to us
        reply = await client.send(prepare)   # Fulfill or Reject, never an exception

While disconnected (or reconnecting), `send` answers T01 at once; requests outstanding when the connection
drops are answered T01 too. Reconnection waits 0, 0.1, 0.5, 1, 2, then every 5 seconds, and authenticates
again.
"""

import asyncio
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self
from urllib.parse import unquote, urlsplit, urlunsplit

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

from stream import btp, ildcp, ilp
from stream.aio.btp_session import (
    CLOSE_TIMEOUT,
    MAX_INCOMING,
    PING_INTERVAL,
    BtpSession,
    Outcome,
    websocket_options,
)
from stream.aio.plugin import (
    RESPONSE_TIMEOUT,
    IlpHandler,
    accept_reply,
    answer,
    answer_budget,
    encode_reply,
    reject,
    time_left,
)
from stream.errors import DecodeError

BACKOFF = tuple(timedelta(milliseconds=ms) for ms in (0, 100, 500, 1000, 2000, 5000))
CONNECT_TIMEOUT = timedelta(seconds=10)
ILDCP_TIMEOUT = timedelta(seconds=10)

_log = logging.getLogger(__name__)


class LinkState(enum.Enum):
    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"
    REFUSED = "refused"
    CLOSED = "closed"


_CONNECTABLE = frozenset({LinkState.IDLE, LinkState.DISCONNECTED, LinkState.REFUSED})


class BtpAuthError(ConnectionError):
    """The server refused our credentials."""


class BtpConnectError(ConnectionError):
    """No authenticated connection could be made in time."""


class IldcpError(RuntimeError):
    """The parent did not answer IL-DCP with a usable Fulfill."""


class _AttemptFailed(Exception):
    """One connection attempt failed in a way worth retrying."""


@dataclass(frozen=True, slots=True)
class BtpUrl:
    """`btp+ws://user:token@host:port/path`: the websocket URL and the credentials sent in the first frame."""

    ws_url: str
    username: str
    token: str = field(repr=False)


def parse_btp_url(url: str) -> BtpUrl:
    parts = urlsplit(url)
    if parts.scheme not in {"btp+ws", "btp+wss"}:
        raise ValueError(f"a BTP URL starts with btp+ws:// or btp+wss://, got {parts.scheme!r}")
    host = parts.netloc.rpartition("@")[2]
    if not host:
        raise ValueError("BTP URL without a host")
    ws_url = urlunsplit((parts.scheme[len("btp+") :], host, parts.path, parts.query, ""))
    return BtpUrl(ws_url, unquote(parts.username or ""), unquote(parts.password or ""))


class BtpClient:
    def __init__(
        self,
        url: str,
        *,
        reconnect: bool = True,
        connect_timeout: timedelta = CONNECT_TIMEOUT,
        response_timeout: timedelta = RESPONSE_TIMEOUT,
        ping_interval: timedelta | None = PING_INTERVAL,
        backoff: Sequence[timedelta] = BACKOFF,
        max_reconnect_attempts: int | None = None,
        max_incoming: int = MAX_INCOMING,
    ) -> None:
        if not backoff:
            raise ValueError("backoff needs at least one delay")
        self._url = parse_btp_url(url)
        self._reconnect = reconnect
        self._connect_timeout = connect_timeout
        self._response_timeout = response_timeout
        self._ping_interval = ping_interval
        self._backoff = tuple(backoff)
        self._max_reconnect_attempts = max_reconnect_attempts
        self._max_incoming = max_incoming
        self._handler: IlpHandler | None = None
        self._ildcp: ildcp.IldcpResponse | None = None
        self._address = ""
        self._session: BtpSession | None = None
        self._reader: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._state = LinkState.IDLE
        self._state_changed = asyncio.Event()  # set (and replaced) at each change of state
        self._closing = False
        self.connected = asyncio.Event()
        """Set while an authenticated connection is up."""

    def __repr__(self) -> str:
        return f"BtpClient({self._url.ws_url!r}, username={self._url.username!r}, state={self._state.value})"

    @property
    def state(self) -> LinkState:
        return self._state

    async def until(self, *states: LinkState) -> LinkState:
        """Waits until the client is in one of `states` (e.g. REFUSED or DISCONNECTED once it gave up
        reconnecting); returns that state."""
        while self._state not in states:
            await self._state_changed.wait()
        return self._state

    def _set_state(self, state: LinkState) -> None:
        self._state = state
        changed, self._state_changed = self._state_changed, asyncio.Event()
        changed.set()

    @property
    def address(self) -> str | None:
        """Our ILP address, once `ildcp()` has answered."""
        return self._ildcp.client_address if self._ildcp else None

    @property
    def ildcp_info(self) -> ildcp.IldcpResponse | None:
        return self._ildcp

    # --- lifetime -------------------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Connects and authenticates, retrying (when `reconnect`) for up to `connect_timeout`.

        Raises BtpAuthError when the server refuses the credentials, BtpConnectError when it is unreachable.
        """
        previous = self._state
        if previous not in _CONNECTABLE:
            raise RuntimeError(f"connect() on a client that is {previous.value}")
        self._set_state(LinkState.CONNECTING)
        loop = asyncio.get_running_loop()
        try:
            attempts = None if self._reconnect else 1
            session, reader = await self._establish(datetime.now(UTC) + self._connect_timeout, attempts)
        except BaseException:
            self._set_state(previous)
            raise
        self._attach(session, reader)
        self._supervisor = loop.create_task(self._supervise())

    async def close(self) -> None:
        """Closes the connection and stops reconnecting; outstanding sends are answered T01."""
        self._closing = True
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
        session, reader = self._session, self._reader
        self._detach(LinkState.CLOSED)
        if session is not None and reader is not None:
            await _discard(session, reader)

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _attach(self, session: BtpSession, reader: "asyncio.Task[None]") -> None:
        self._session, self._reader = session, reader
        self._set_state(LinkState.CONNECTED)
        self.connected.set()

    def _detach(self, state: LinkState) -> None:
        self._session = self._reader = None
        self._set_state(state)
        self.connected.clear()

    async def _supervise(self) -> None:
        while True:
            reader = self._reader
            assert reader is not None
            await asyncio.wait([reader])
            if not self._reconnect:
                self._detach(LinkState.DISCONNECTED)
                _log.warning("BTP connection to %s lost", self._url.ws_url)
                return
            self._detach(LinkState.RECONNECTING)
            _log.info("BTP connection to %s lost; reconnecting", self._url.ws_url)
            try:
                session, reader = await self._establish(None, self._max_reconnect_attempts)
            except BtpAuthError as exc:
                self._detach(LinkState.REFUSED)
                _log.warning("BTP server %s refused to reconnect us: %s", self._url.ws_url, exc)
                return
            except BtpConnectError as exc:
                self._detach(LinkState.DISCONNECTED)
                _log.warning("BTP server %s unreachable, giving up: %s", self._url.ws_url, exc)
                return
            self._attach(session, reader)
            _log.info("BTP connection to %s restored", self._url.ws_url)

    async def _establish(
        self, deadline: datetime | None, max_attempts: int | None
    ) -> tuple[BtpSession, "asyncio.Task[None]"]:
        attempt = 0
        failure: Exception | None = None
        while max_attempts is None or attempt < max_attempts:
            delay = self._backoff[min(attempt, len(self._backoff) - 1)]
            if deadline is not None and datetime.now(UTC) + delay >= deadline:
                break
            await asyncio.sleep(delay.total_seconds())
            if self._closing:
                raise BtpConnectError("client closed while connecting")
            attempt += 1
            limit = self._connect_timeout
            if deadline is not None:
                limit = min(limit, deadline - datetime.now(UTC))
            try:
                return await self._open(limit)
            except BtpAuthError:
                raise
            except (OSError, TimeoutError, WebSocketException, _AttemptFailed) as exc:
                failure = exc
                _log.debug("BTP connection attempt %d to %s failed: %s", attempt, self._url.ws_url, exc)
        raise BtpConnectError(f"could not connect to {self._url.ws_url}: {failure}") from failure

    async def _open(self, limit: timedelta) -> tuple[BtpSession, "asyncio.Task[None]"]:
        ws = await connect(
            self._url.ws_url, open_timeout=limit.total_seconds(), **websocket_options(self._ping_interval)
        )
        session = BtpSession(
            ws,
            address=self._address,
            dispatch=self._dispatch if self._handler else None,
            max_incoming=self._max_incoming,
        )
        reader = asyncio.get_running_loop().create_task(session.run())
        try:
            auth = btp.auth_message(session.next_request_id(), self._url.username, self._url.token)
            outcome = await session.request(auth, limit)
        except BaseException:
            await _discard(session, reader)
            raise
        if isinstance(outcome, btp.Response) and not self._closing:
            return session, reader
        await _discard(session, reader)
        if isinstance(outcome, btp.Error):
            raise BtpAuthError(f"{outcome.code} {outcome.name}: {outcome.data}")
        if self._closing:
            raise BtpConnectError("client closed while connecting")
        reason = "timed out" if outcome is Outcome.TIMED_OUT else "connection closed"
        raise _AttemptFailed(f"authentication {reason}")

    # --- ILP ------------------------------------------------------------------------------------------------

    def set_handler(self, handler: IlpHandler) -> None:
        self._handler = handler
        if self._session is not None:
            self._session.dispatch = self._dispatch

    async def send(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        session = self._session
        if session is None or not session.is_open:
            return reject(ilp.ErrorCode.T01_PEER_UNREACHABLE, self._address, "not connected")
        left = time_left(prepare)
        if left <= timedelta(0):
            return reject(ilp.ErrorCode.R00_TRANSFER_TIMED_OUT, self._address, "expired before it was sent")
        reply = await session.call(ilp.encode(prepare), min(left, self._response_timeout))
        try:
            packet = ilp.decode_reply(reply)
        except DecodeError:
            return reject(ilp.ErrorCode.T00_INTERNAL_ERROR, self._address, "peer sent an invalid ILP reply")
        # A late or non-matching Fulfill is refused here (R00 / F05), so the sender never counts it as paid.
        return accept_reply(prepare, packet, self._address)

    async def ildcp(self, timeout: timedelta = ILDCP_TIMEOUT) -> ildcp.IldcpResponse:  # noqa: ASYNC109
        """Asks the parent for our address and asset (RFC 0031); raises IldcpError if it cannot tell."""
        request = ildcp.request_prepare(datetime.now(UTC) + timeout)
        reply = await self.send(request)
        if isinstance(reply, ilp.Reject):
            raise IldcpError(f"IL-DCP rejected: {reply.code} {reply.message}")
        try:
            info = ildcp.parse_response(reply)
        except DecodeError as exc:
            raise IldcpError(f"unreadable IL-DCP response: {exc}") from exc
        self._ildcp = info
        self._address = info.client_address
        if self._session is not None:
            self._session.address = info.client_address
        return info

    async def _dispatch(self, prepare: ilp.Prepare, _raw: bytes) -> bytes:
        handler = self._handler
        budget = answer_budget(prepare)
        if handler is None or budget is None:
            code = ilp.ErrorCode.R00_TRANSFER_TIMED_OUT if budget is None else ilp.ErrorCode.F02_UNREACHABLE
            return ilp.encode(reject(code, self._address, "expired" if budget is None else "no handler"))
        return encode_reply(await answer(handler, prepare, budget, self._address), self._address)


async def _discard(session: BtpSession, reader: "asyncio.Task[None]") -> None:
    """Closes a session and waits for its reader, which ends once the websocket has closed."""
    await session.close()
    await asyncio.wait([reader], timeout=CLOSE_TIMEOUT.total_seconds())
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
