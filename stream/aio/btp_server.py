"""A BTP endpoint in the style of ilp-plugin-mini-accounts: clients get accounts under our ILP address.

A client authenticates with `auth_username` / `auth_token`; its account is the username, or
base64url(sha256(token)) without one, and its address `<address>.<account>`. Without an `authenticate`
callback the first token seen for a username is the only one accepted afterwards (kept by `pins`, a
`TokenPinStore`: in memory unless one is given). Prepares from clients go to
`peer.config` (IL-DCP, answered here), to another connected client (its most recent connection), to the local
handler (anything else under our address), or nowhere (F02).

    server = BtpServer("private.pullsrv", ("XRP", 9))
    server.set_handler(handle_prepare)
    await server.start()              # server.port
    reply = await server.send(prepare_to_a_client)
    await server.stop()
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import timedelta
from types import TracebackType
from typing import Self
from urllib.parse import quote

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from stream import btp, ildcp, ilp
from stream.address import validate_address
from stream.aio.accounts import (
    MemoryTokenPins,
    PinVerdict,
    TokenPinStore,
    account_name,
    account_under,
    is_valid_account,
    token_digest,
)
from stream.aio.btp_session import (
    MAX_INCOMING,
    PING_INTERVAL,
    BtpSession,
    not_accepted,
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

Authenticate = Callable[[str, str], Awaitable[str | None]]
"""(username, token) -> the account to use, or None to refuse."""

CLIENT_ACCOUNT: ContextVar[str | None] = ContextVar("btp_client_account", default=None)
"""While the handler answers a client's Prepare: the account of the client it came from."""

AUTH_TIMEOUT = timedelta(seconds=10)
STOP_TIMEOUT = timedelta(seconds=5)

_BAD_ACCOUNT = "account name is not an ILP address segment"

_log = logging.getLogger(__name__)


class BtpServer:
    def __init__(
        self,
        address: str,
        asset: tuple[str, int],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        authenticate: Authenticate | None = None,
        response_timeout: timedelta = RESPONSE_TIMEOUT,
        auth_timeout: timedelta = AUTH_TIMEOUT,
        ping_interval: timedelta | None = PING_INTERVAL,
        max_incoming: int = MAX_INCOMING,
        pins: TokenPinStore | None = None,
    ) -> None:
        self.address = validate_address(address)
        self.asset_code, self.asset_scale = asset
        self.host = host
        self._port = port
        self._authenticate = authenticate
        self._response_timeout = response_timeout
        self._auth_timeout = auth_timeout
        self._ping_interval = ping_interval
        self._max_incoming = max_incoming
        self._prefix = address + "."
        self._pins = MemoryTokenPins() if pins is None else pins
        self._sessions: dict[str, list[BtpSession]] = {}
        self._handler: IlpHandler | None = None
        self._server: Server | None = None
        self._unreachable = ilp.encode(reject(ilp.ErrorCode.F02_UNREACHABLE, address, "no route"))
        self._expired = ilp.encode(reject(ilp.ErrorCode.R00_TRANSFER_TIMED_OUT, address, "prepare expired"))

    @property
    def port(self) -> int:
        """The port listened on (the one picked by the system when 0 was asked for) once started."""
        return self._port

    def url(self, username: str, token: str) -> str:
        """Where a client connects (host and port of this server)."""
        credentials = f"{quote(username, safe='')}:{quote(token, safe='')}"
        return f"btp+ws://{credentials}@{self.host}:{self._port}"

    def accounts(self) -> frozenset[str]:
        """The accounts that have at least one connection now."""
        return frozenset(self._sessions)

    def client_address(self, account: str) -> str:
        return f"{self._prefix}{account}"

    # --- lifetime -------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("server already started")
        self._server = await serve(
            self._connection,
            self.host,
            self._port,
            **websocket_options(self._ping_interval),
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stops listening and closes every connection; waits (bounded) until their handlers are done."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), STOP_TIMEOUT.total_seconds())
        except TimeoutError:
            _log.warning("BTP server connections still open after %s", STOP_TIMEOUT)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- connections ----------------------------------------------------------------------------------------

    async def _connection(self, ws: ServerConnection) -> None:
        account = await self._accept(ws)
        if account is None:
            return
        info = ildcp.IldcpResponse(self.client_address(account), self.asset_scale, self.asset_code)
        ildcp_reply = ilp.encode(ildcp.response_fulfill(info))

        async def dispatch(prepare: ilp.Prepare, raw: bytes) -> bytes:
            if prepare.destination == ildcp.ILDCP_DESTINATION:
                return ildcp_reply
            CLIENT_ACCOUNT.set(account)  # each Prepare is answered in its own task (context)
            return await self._route(prepare, raw)

        session = BtpSession(
            ws,
            address=self.address,
            dispatch=dispatch,
            busy_code=ilp.ErrorCode.T03_CONNECTOR_BUSY,
            max_incoming=self._max_incoming,
        )
        sessions = self._sessions.setdefault(account, [])
        sessions.append(session)
        _log.info("BTP client %s connected", account)
        try:
            await session.run()
        finally:
            sessions.remove(session)
            if not sessions and self._sessions.get(account) is sessions:
                del self._sessions[account]
            _log.info("BTP client %s disconnected", account)

    async def _accept(self, ws: ServerConnection) -> str | None:
        """Reads the auth frame; the client's account once accepted, else None (the client was refused)."""
        try:
            async with asyncio.timeout(self._auth_timeout.total_seconds()):
                first = await ws.recv()
        except (TimeoutError, ConnectionClosed):
            return None
        try:
            packet = btp.decode(first) if isinstance(first, bytes) else None
        except DecodeError:
            packet = None
        if packet is None:
            return None
        try:
            if not isinstance(packet, btp.Message):
                raise DecodeError("the first message must be a BTP auth message")
            credentials = btp.parse_auth(packet)
        except DecodeError as exc:
            await self._refuse(ws, packet.request_id, str(exc))
            return None
        account, refusal = await self._account(credentials)
        if account is None:
            await self._refuse(ws, packet.request_id, refusal)
            return None
        try:
            await ws.send(btp.encode(btp.auth_accepted(packet.request_id)))
        except ConnectionClosed:
            return None
        return account

    async def _account(self, credentials: btp.AuthCredentials) -> tuple[str | None, str]:
        """The account for `credentials`, or None and why they are refused."""
        if not credentials.token:
            return None, "auth_token is required"
        if self._authenticate is not None:
            return await _custom_account(self._authenticate, credentials)
        account = account_name(credentials.username, credentials.token)
        if not is_valid_account(account):
            return None, _BAD_ACCOUNT
        if credentials.username:
            verdict = await self._pins.pin(account, token_digest(credentials.token))
            if verdict is not PinVerdict.ACCEPTED:
                return None, verdict.value
        return account, ""

    async def _refuse(self, ws: ServerConnection, request_id: int, message: str) -> None:
        try:
            await ws.send(btp.encode(not_accepted(request_id, message)))
        except ConnectionClosed:
            return
        await ws.close()

    # --- ILP ------------------------------------------------------------------------------------------------

    def set_handler(self, handler: IlpHandler) -> None:
        """Answers Prepares from clients to addresses under ours that are not another client's."""
        self._handler = handler

    async def send(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        """Sends `prepare` to the client whose account its destination names (F02 if none is connected)."""
        session = self._client_session(prepare.destination)
        if session is None:
            return reject(ilp.ErrorCode.F02_UNREACHABLE, self.address, "no such client connected")
        left = time_left(prepare)
        if left <= timedelta(0):
            return reject(ilp.ErrorCode.R00_TRANSFER_TIMED_OUT, self.address, "expired before it was sent")
        _, reply = await self._exchange(session, prepare, ilp.encode(prepare), left)
        return reply

    def _client_session(self, destination: str) -> BtpSession | None:
        account = account_under(destination, self._prefix)
        sessions = self._sessions.get(account) if account is not None else None
        return sessions[-1] if sessions else None

    async def _route(self, prepare: ilp.Prepare, raw: bytes) -> bytes:
        budget = answer_budget(prepare)
        if budget is None:
            return self._expired
        session = self._client_session(prepare.destination)
        if session is not None:
            reply, _ = await self._exchange(session, prepare, raw, budget)
            return reply
        handler = self._handler
        destination = prepare.destination
        if handler is not None and (destination.startswith(self._prefix) or destination == self.address):
            return encode_reply(await answer(handler, prepare, budget, self.address), self.address)
        return self._unreachable

    async def _exchange(
        self, session: BtpSession, prepare: ilp.Prepare, raw: bytes, budget: timedelta
    ) -> tuple[bytes, ilp.IlpReply]:
        """The client's answer, encoded and decoded, as the sender may accept it (`accept_reply`): a Fulfill
        not matching the condition becomes F05, one that arrived after the Prepare expired R00 — refused here,
        so it pays nothing (this endpoint keeps no balances: a client is paid exactly the Fulfills handed
        back to the sender)."""
        reply = await session.call(raw, min(budget, self._response_timeout))
        try:
            packet = ilp.decode_reply(reply)
        except DecodeError:
            packet = reject(ilp.ErrorCode.T00_INTERNAL_ERROR, self.address, "invalid reply from client")
            return ilp.encode(packet), packet
        accepted = accept_reply(prepare, packet, self.address)
        if accepted is not packet:
            return ilp.encode(accepted), accepted
        return reply, packet


async def _custom_account(
    authenticate: Authenticate, credentials: btp.AuthCredentials
) -> tuple[str | None, str]:
    try:
        account = await authenticate(credentials.username, credentials.token)
    except Exception:
        _log.exception("BTP authenticate callback failed")
        return None, "authentication failed"
    if account is None:
        return None, "incorrect token for account"
    if not is_valid_account(account):
        return None, _BAD_ACCOUNT
    return account, ""
