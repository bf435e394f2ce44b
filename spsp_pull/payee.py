"""The payee's side: pull from a pull pointer (or push to a payment pointer) over STREAM.

    outcome = await pull("$wallet.example/abc", 1000, btp_url="btp+ws://me:secret@127.0.0.1:7768")

The payee needs a place on the Interledger network: a BTP account at a connector (moneyd, ilp-connector) or
at the pull server's own embedded endpoint. An SPSP query gives the destination and shared secret; a STREAM
connection then receives what the server sends on the payee's stream.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from spsp_pull.http_problem import json_or_text, problem_text
from spsp_pull.payment_pointer import client_ssl_context, resolve
from stream import ildcp, ilp
from stream.aio.address_router import AddressRouter
from stream.aio.btp_client import BtpAuthError, BtpClient, BtpConnectError, IldcpError
from stream.aio.connection_runner import ConnectionRunner
from stream.connection import (
    AssetDetails,
    ConnectionClosed,
    ConnectionOptions,
    Event,
    MoneyReceived,
    MoneySent,
    StreamClosed,
    StreamConnection,
)
from stream.crypto import StreamKeys
from stream.oer import U64_MAX

SPSP_ACCEPT = "application/spsp4+json, application/spsp+json"
Progress = Callable[[int], None]
DEFAULT_TIME_LIMIT = timedelta(seconds=60)


class PayeeError(RuntimeError):
    """A pull or payment could not start; nothing was received or sent."""


class SpspError(PayeeError):
    """The SPSP query failed: the server refused it or did not answer SPSP."""


class PointerNotFound(SpspError):
    """The server does not know the pointer (404)."""


class SpspUnreachable(SpspError):
    """The pointer's server could not be reached."""


class BtpRefused(PayeeError):
    """The BTP endpoint refused our account (a wrong token for the user name, or IL-DCP refused)."""


class BtpUnreachable(PayeeError):
    """No BTP connection could be made to the endpoint."""


class InvalidBtpUrl(PayeeError):
    """Not a `btp+ws://user:token@host:port` URL."""


class WrongPointerKind(PayeeError):
    """A pull from a plain payment pointer, or a payment to a pull pointer."""


@dataclass(frozen=True, slots=True)
class SpspDetails:
    destination_account: str
    shared_secret: bytes
    pull: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    """How a pull (or push) ended. `amount` is what arrived (pull) or was sent (push), in our asset."""

    amount: int
    requested: int | None
    reason: str  # "complete", "closed-by-server", "timeout", "connection-error"
    detail: str = ""

    @property
    def complete(self) -> bool:
        return self.reason == "complete"


async def fetch_spsp(pointer: str, *, session: aiohttp.ClientSession | None = None) -> dict[str, Any]:
    """The SPSP response of a pointer, as JSON; typed errors when there is none."""
    url = resolve(pointer)
    own = session is None
    session = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    try:
        try:
            return await _get_spsp(session, url)
        except aiohttp.ServerDisconnectedError:
            if not (pointer.startswith("$") and url.startswith("http://")):
                raise
            # A $pointer on a loopback host is asked over http first; a local server that serves TLS
            # (serve --tls-self-signed) drops a plain request, so it is asked once more over https. On
            # loopback nobody in between can have caused the drop.
            url = "https://" + url.removeprefix("http://")
            return await _get_spsp(session, url)
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise SpspUnreachable(f"cannot reach {url}: {exc or 'timed out'}") from None
    finally:
        if own:
            await session.close()


async def _get_spsp(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    tls = client_ssl_context() if url.startswith("https:") else True
    async with session.get(url, headers={"Accept": SPSP_ACCEPT}, ssl=tls) as response:
        body = json_or_text(await response.text())
        if response.status == 404:
            raise PointerNotFound(f"{url}: {problem_text(response.status, body)}")
        if response.status != 200:
            raise SpspError(f"{url}: {problem_text(response.status, body)}")
        spsp = "application/spsp4+json" in response.headers.get("Content-Type", "")
        if not spsp or not isinstance(body, dict):
            raise SpspError(f"{url} did not answer with application/spsp4+json")
        return body


async def query(pointer: str, *, session: aiohttp.ClientSession | None = None) -> SpspDetails:
    body = await fetch_spsp(pointer, session=session)
    try:
        secret = base64.b64decode(
            str(body["shared_secret"]).replace("-", "+").replace("_", "/") + "==", validate=False
        )
        destination = str(body["destination_account"])
    except (KeyError, ValueError) as exc:
        raise SpspError(f"{pointer}: not an SPSP response ({exc})") from None
    if len(secret) != 32:
        raise SpspError(f"{pointer}: shared_secret is not 32 bytes")
    pull = body.get("pull")
    return SpspDetails(destination, secret, pull if isinstance(pull, dict) else None)


def default_btp_url(host: str = "127.0.0.1", port: int = 7768) -> str:
    """A fresh account at a mini-accounts endpoint (moneyd, or the pull server's embedded one)."""
    return f"btp+ws://payee{secrets.token_hex(4)}:{secrets.token_urlsafe(16)}@{host}:{port}"


@dataclass
class _Session:
    connection: StreamConnection
    runner: ConnectionRunner
    watcher: _Watcher
    stream_id: int


@contextlib.asynccontextmanager
async def _joined(btp_url: str) -> AsyncIterator[tuple[BtpClient, ildcp.IldcpResponse]]:
    """A BTP connection with our ILP address and asset (IL-DCP); typed errors when there is none."""
    try:
        client = BtpClient(btp_url, reconnect=False)
    except ValueError as exc:
        raise InvalidBtpUrl(str(exc)) from None
    try:
        await client.connect()
    except BtpAuthError as exc:
        raise BtpRefused(f"the BTP endpoint refused the account: {exc}") from None
    except BtpConnectError as exc:
        raise BtpUnreachable(str(exc)) from None
    try:
        try:
            info = await client.ildcp()
        except IldcpError as exc:
            raise BtpRefused(f"no ILP address from the BTP endpoint: {exc}") from None
        yield client, info
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def _stream_session(
    pointer: str, btp_url: str, max_in_flight: int, on_progress: Progress | None, *, pulling: bool
) -> AsyncIterator[_Session]:
    """Query the pointer, join the network, open one STREAM connection and stream; close them after."""
    details = await query(pointer)
    if pulling and details.pull is None:
        raise WrongPointerKind(f"{pointer} is not a pull pointer (its SPSP answer has no pull object)")
    if not pulling and details.pull is not None:
        raise WrongPointerKind(f"{pointer} is a pull pointer: the payee pulls from it, it takes no payments")
    async with _joined(btp_url) as (link, info):
        router = AddressRouter(link, info.client_address)
        asset = AssetDetails(info.asset_code, info.asset_scale)
        async with _stream_on(router, asset, details, max_in_flight, on_progress) as session:
            yield session


@contextlib.asynccontextmanager
async def joined_router(btp_url: str) -> AsyncIterator[tuple[AddressRouter, AssetDetails]]:
    """One BTP connection for many STREAM connections (see `pull_on`), and our asset on it."""
    async with _joined(btp_url) as (link, info):
        yield AddressRouter(link, info.client_address), AssetDetails(info.asset_code, info.asset_scale)


@contextlib.asynccontextmanager
async def _stream_on(
    router: AddressRouter,
    asset: AssetDetails,
    details: SpspDetails,
    max_in_flight: int,
    on_progress: Progress | None,
) -> AsyncIterator[_Session]:
    """One STREAM connection (and its stream) at an address of its own on `router`; closed after."""
    runner: ConnectionRunner | None = None

    async def answer(prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        assert runner is not None
        return runner.handle_prepare(prepare)

    with router.route(answer) as local_address:
        connection = StreamConnection(
            keys=StreamKeys(details.shared_secret),
            is_server=False,
            local_address=local_address,
            remote_address=details.destination_account,
            asset=asset,
            now=datetime.now(UTC),
            options=ConnectionOptions(max_in_flight=max_in_flight),
        )
        watcher = _Watcher(on_progress)
        runner = ConnectionRunner(connection, router, on_events=watcher.on_events)
        session = _Session(connection, runner, watcher, connection.open_stream())
        try:
            yield session
        finally:
            connection.close()
            runner.kick()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await runner.wait_closed()
            await runner.stop()


async def _until(session: _Session, done: Callable[[], bool], time_limit: timedelta) -> bool:
    """Run the connection until `done()` or the stream ends; False on time-out."""
    session.runner.start()
    try:
        async with asyncio.timeout(time_limit.total_seconds()):
            await session.watcher.wait(lambda: done() or session.watcher.ended)
    except TimeoutError:
        return False
    return True


async def pull(
    pointer: str,
    amount: int | None,
    *,
    btp_url: str,
    time_limit: timedelta = DEFAULT_TIME_LIMIT,
    max_in_flight: int = 1,
    on_progress: Progress | None = None,
) -> PaymentOutcome:
    """Receive up to `amount` (everything the server will send when None) from a pull pointer."""
    async with _stream_session(pointer, btp_url, max_in_flight, on_progress, pulling=True) as session:
        finished = await _receive(session, amount, time_limit)
    return _received(session.watcher, amount, finished)


async def pull_on(
    router: AddressRouter,
    asset: AssetDetails,
    details: SpspDetails,
    amount: int,
    *,
    time_limit: timedelta = DEFAULT_TIME_LIMIT,
    max_in_flight: int = 1,
) -> PaymentOutcome:
    """`pull` from a pointer already queried (`details`), over a shared BTP connection (`joined_router`)."""
    async with _stream_on(router, asset, details, max_in_flight, None) as session:
        finished = await _receive(session, amount, time_limit)
    return _received(session.watcher, amount, finished)


async def pull_queried(
    details: SpspDetails,
    amount: int,
    *,
    btp_url: str,
    time_limit: timedelta = DEFAULT_TIME_LIMIT,
    max_in_flight: int = 1,
) -> PaymentOutcome:
    """`pull` from a pointer already queried, over a BTP connection of its own."""
    async with joined_router(btp_url) as (router, asset):
        return await pull_on(
            router, asset, details, amount, time_limit=time_limit, max_in_flight=max_in_flight
        )


async def _receive(session: _Session, amount: int | None, time_limit: timedelta) -> bool:
    """Run the pull until `amount` arrived or the stream ended (True), or the time is up (False)."""
    watcher = session.watcher
    session.connection.set_receive_max(session.stream_id, U64_MAX if amount is None else amount)
    return await _until(session, lambda: amount is not None and watcher.received >= amount, time_limit)


def _received(watcher: _Watcher, amount: int | None, finished: bool) -> PaymentOutcome:
    """How a pull ended, once its connection is closed (what arrived while closing counts too)."""
    complete = amount is not None and watcher.received >= amount
    reason = "complete" if complete else ("closed-by-server" if finished else "timeout")
    return PaymentOutcome(watcher.received, amount, reason, watcher.detail)


async def send(
    pointer: str,
    amount: int,
    *,
    btp_url: str,
    time_limit: timedelta = DEFAULT_TIME_LIMIT,
    max_in_flight: int = 1,
) -> PaymentOutcome:
    """Push `amount` (in our asset) to a payment pointer."""
    async with _stream_session(pointer, btp_url, max_in_flight, None, pulling=False) as session:
        watcher = session.watcher
        session.connection.set_send_max(session.stream_id, amount)
        finished = await _until(session, lambda: watcher.sent >= amount, time_limit)
    reason = "complete" if watcher.sent >= amount else ("closed-by-server" if finished else "timeout")
    return PaymentOutcome(watcher.sent, amount, reason, watcher.detail)


class _Watcher:
    def __init__(self, on_progress: Progress | None) -> None:
        self.received = 0
        self.sent = 0
        self.ended = False
        self.detail = ""
        self._on_progress = on_progress
        self._changed = asyncio.Event()

    def on_events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, MoneyReceived):
                self.received += event.amount
                if self._on_progress is not None:
                    self._on_progress(self.received)
            elif isinstance(event, MoneySent):
                self.sent += event.amount
            elif isinstance(event, StreamClosed | ConnectionClosed):
                self.ended = True
                self.detail = self.detail or event.message
        self._changed.set()

    async def wait(self, done: Callable[[], bool]) -> None:
        while not done():
            self._changed.clear()
            await self._changed.wait()
