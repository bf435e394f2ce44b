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

from spsp_pull.payment_pointer import resolve
from stream import ilp
from stream.aio.btp_client import BtpClient
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


class SpspError(RuntimeError):
    """The SPSP query failed (not found, not SPSP, unreachable)."""


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


async def query(pointer: str, *, session: aiohttp.ClientSession | None = None) -> SpspDetails:
    url = resolve(pointer)
    own = session is None
    session = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
    try:
        async with session.get(url, headers={"Accept": SPSP_ACCEPT}) as response:
            if "application/spsp4+json" not in response.headers.get("Content-Type", ""):
                raise SpspError(f"{url} did not answer with application/spsp4+json ({response.status})")
            body = await response.json(content_type=None)
            if response.status != 200:
                raise SpspError(f"{url}: {response.status} {body.get('id', '')}: {body.get('message', '')}")
            secret = base64.b64decode(body["shared_secret"].replace("-", "+").replace("_", "/") + "==")
            if len(secret) != 32:
                raise SpspError(f"{url}: shared_secret is not 32 bytes")
            return SpspDetails(body["destination_account"], secret, body.get("pull"))
    except aiohttp.ClientError as exc:
        raise SpspError(f"cannot reach {url}: {exc}") from None
    finally:
        if own:
            await session.close()


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
async def _stream_session(
    pointer: str, btp_url: str, max_in_flight: int, on_progress: Progress | None
) -> AsyncIterator[_Session]:
    """Query the pointer, join the network, open one STREAM connection and stream; close them after."""
    details = await query(pointer)
    async with BtpClient(btp_url, reconnect=False) as link:
        info = await link.ildcp()
        connection = StreamConnection(
            keys=StreamKeys(details.shared_secret),
            is_server=False,
            local_address=info.client_address,
            remote_address=details.destination_account,
            asset=AssetDetails(info.asset_code, info.asset_scale),
            now=datetime.now(UTC),
            options=ConnectionOptions(max_in_flight=max_in_flight),
        )
        watcher = _Watcher(on_progress)
        runner = ConnectionRunner(connection, link, on_events=watcher.on_events)

        async def answer(prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
            return runner.handle_prepare(prepare)

        link.set_handler(answer)
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
    async with _stream_session(pointer, btp_url, max_in_flight, on_progress) as session:
        watcher = session.watcher
        session.connection.set_receive_max(session.stream_id, U64_MAX if amount is None else amount)
        finished = await _until(
            session, lambda: amount is not None and watcher.received >= amount, time_limit
        )
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
    async with _stream_session(pointer, btp_url, max_in_flight, None) as session:
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
