"""A scripted, hostile payee: raw control of every BTP frame, every ILP reply and every STREAM frame.

Built on the project's sans-I/O codecs (`stream.btp`, `stream.ilp`, `stream.ildcp`, `stream.packet`,
`stream.frames`, `stream.crypto`) over a plain websocket, so a script can do what no well-behaved client
does: answer a Prepare twice, answer it late, out of order or never, drop the link with Prepares in flight,
and send any frame in a packet of its own. It keeps the books a test needs: which Prepares it fulfilled
before their expiry (what it was paid) and which after. It also plays the honest payee
(`receive_until_closed`), for the pulls that follow an attack.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from types import TracebackType
from typing import Self

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from stream import btp, ildcp, ilp
from stream.crypto import StreamKeys, random_condition, sha256
from stream.errors import DecodeError, DecryptionError
from stream.frames import (
    ConnectionAssetDetails,
    ConnectionClose,
    ConnectionNewAddress,
    Frame,
    StreamClose,
    StreamMaxMoney,
    StreamMoney,
)
from stream.packet import StreamPacket, decrypt_packet, encrypt_packet

PAYEE_STREAM = 1  # the stream a payee opens unless it names another
REQUEST_TIMEOUT = timedelta(seconds=10)
OUR_PREPARE_LIFETIME = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class IncomingPrepare:
    """A Prepare the server sent us, with the request id to answer it by."""

    request_id: int
    prepare: ilp.Prepare
    packet: StreamPacket | None  # None when its data is not STREAM data for our connection

    @property
    def amount(self) -> int:
        return self.prepare.amount

    def expired(self, margin: timedelta = timedelta(0)) -> bool:
        return datetime.now(UTC) >= self.prepare.expires_at - margin

    def closes_stream(self, stream_id: int) -> bool:
        frames = self.packet.frames if self.packet is not None else ()
        return any(isinstance(f, StreamClose) and f.stream_id == stream_id for f in frames)


class RawBtpLink:
    """One BTP websocket to the server's embedded endpoint; our requests are matched to their answers, the
    server's Prepares queue up for the script to answer (or not) as it likes."""

    def __init__(self, url: str, username: str, token: str) -> None:
        self._url = url
        self.username = username
        self._token = token
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[btp.BtpPacket]] = {}
        self.incoming: asyncio.Queue[tuple[int, ilp.Prepare]] = asyncio.Queue()

    async def connect(self) -> None:
        self._ws = await connect(self._url, open_timeout=10)
        self._reader = asyncio.get_running_loop().create_task(self._read(self._ws))
        answer = await self._request(btp.auth_message(self._request_id(), self.username, self._token))
        if not isinstance(answer, btp.Response):
            raise ConnectionError(f"BTP auth refused: {answer}")

    async def drop(self) -> None:
        """Close the websocket at once, whatever is in flight either way."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        self._ws = None

    async def send(self, prepare: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
        answer = await self._request(btp.ilp_message(self._request_id(), ilp.encode(prepare)))
        payload = btp.ilp_payload(answer) if isinstance(answer, btp.Response) else None
        if payload is None:
            raise ConnectionError(f"no ILP reply to our Prepare: {answer}")
        return ilp.decode_reply(payload)

    async def respond(self, request_id: int, reply: ilp.Fulfill | ilp.Reject) -> None:
        """Answer the server's request `request_id` (as often as the script likes)."""
        assert self._ws is not None
        with contextlib.suppress(ConnectionClosed):
            await self._ws.send(btp.encode(btp.ilp_response(request_id, ilp.encode(reply))))

    def _request_id(self) -> int:
        return random.getrandbits(32)

    async def _request(self, message: btp.Message) -> btp.BtpPacket:
        assert self._ws is not None
        future: asyncio.Future[btp.BtpPacket] = asyncio.get_running_loop().create_future()
        self._pending[message.request_id] = future
        try:
            await self._ws.send(btp.encode(message))
            async with asyncio.timeout(REQUEST_TIMEOUT.total_seconds()):
                return await future
        finally:
            del self._pending[message.request_id]

    async def _read(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for data in ws:
                assert isinstance(data, bytes)
                packet = btp.decode(data)
                if isinstance(packet, btp.Response | btp.Error):
                    future = self._pending.get(packet.request_id)
                    if future is not None and not future.done():
                        future.set_result(packet)
                elif isinstance(packet, btp.Message) and (payload := btp.ilp_payload(packet)) is not None:
                    self.incoming.put_nowait((packet.request_id, ilp.decode_prepare(payload)))


class HostilePayee:
    """A STREAM client of one pull pointer, frame by frame. `paid` is what it fulfilled before expiry."""

    def __init__(self, link: RawBtpLink, destination: str, shared_secret: bytes) -> None:
        self.link = link
        self.destination = destination
        self.keys = StreamKeys(shared_secret)
        self.address = ""
        self.asset = ildcp.IldcpResponse("", 0, "")
        self._sequence = 0
        self.paid = 0
        self.fulfilled_late = 0
        self.fulfilled: set[int] = set()  # request ids answered with a Fulfill before their expiry
        self._control: asyncio.Task[None] | None = None
        self._money: asyncio.Queue[IncomingPrepare] = asyncio.Queue()
        self._every: asyncio.Queue[IncomingPrepare] = asyncio.Queue()  # money and control, as they came
        self.closed_streams: set[int] = set()  # the streams the server closed
        self._closes = asyncio.Event()
        # What arrives here per unit the server sends (as if a connector on the way converted it): the
        # amount our replies say arrived. And, as a JS receiver does, whether our replies say how much the
        # payee's stream has received so far against its receive max (set by `open_stream`).
        self.rate = Fraction(1)
        self.reports_received = False
        self._receive_max: dict[int, int] = {}
        self.received: dict[int, int] = {}  # per stream, in our units

    @classmethod
    async def join(cls, btp_url: str, username: str, destination: str, shared_secret: bytes) -> HostilePayee:
        link = RawBtpLink(btp_url, username, "token-" + secrets.token_hex(8))
        payee = cls(link, destination, shared_secret)
        await payee.connect()
        return payee

    async def connect(self) -> None:
        """(Re)connect the link, learn our address (IL-DCP), and answer control Prepares from now on."""
        await self.link.connect()
        reply = await self.link.send(ildcp.request_prepare(datetime.now(UTC) + REQUEST_TIMEOUT))
        assert isinstance(reply, ilp.Fulfill), reply
        self.asset = ildcp.parse_response(reply)
        self.address = self.asset.client_address
        self._control = asyncio.get_running_loop().create_task(self._sort_incoming())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.drop_link()

    async def drop_link(self) -> None:
        if self._control is not None:
            self._control.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._control
        await self.link.drop()
        self.link.incoming = asyncio.Queue()

    # --- what we send ---------------------------------------------------------------------------------------

    async def send_frames(self, *frames: Frame, amount: int = 0) -> ilp.Fulfill | ilp.Reject:
        """One Prepare of ours on the connection carrying `frames` (and `amount`, fulfillable when > 0)."""
        self._sequence += 1
        packet = StreamPacket(self._sequence, ilp.IlpPacketType.PREPARE, 0, frames)
        data = encrypt_packet(self.keys, packet)
        condition = self.keys.condition(data) if amount else random_condition()
        prepare = ilp.Prepare(
            amount=amount,
            expires_at=datetime.now(UTC) + OUR_PREPARE_LIFETIME,
            execution_condition=condition,
            destination=self.destination,
            data=data,
        )
        return await self.link.send(prepare)

    async def open_stream(
        self,
        stream_id: int = PAYEE_STREAM,
        receive_max: int = 2**64 - 1,
        *,
        asset: tuple[str, int] | None = None,
    ) -> None:
        """Tell the server where we are, in what asset (ours by IL-DCP unless `asset` names another), and
        what we will take on `stream_id`: the pull starts."""
        code, scale = asset or (self.asset.asset_code, self.asset.asset_scale)
        self._receive_max[stream_id] = receive_max
        reply = await self.send_frames(
            ConnectionNewAddress(self.address),
            ConnectionAssetDetails(code, scale),
            StreamMaxMoney(stream_id, receive_max, 0),
        )
        assert isinstance(reply, ilp.Reject), reply  # unfulfillable: the server only reads the frames

    async def close_stream(self, stream_id: int = PAYEE_STREAM) -> None:
        await self.send_frames(StreamClose(stream_id, 1, "payee closes the stream"))

    async def close_connection(self) -> None:
        await self.send_frames(ConnectionClose(1, "payee closes the connection"))

    # --- what the server sends us ---------------------------------------------------------------------------

    async def next_money(self, within: timedelta = timedelta(seconds=10)) -> IncomingPrepare:
        async with asyncio.timeout(within.total_seconds()):
            return await self._money.get()

    async def money(self, count: int, within: timedelta = timedelta(seconds=10)) -> list[IncomingPrepare]:
        return [await self.next_money(within) for _ in range(count)]

    async def money_worth(self, total: int) -> list[IncomingPrepare]:
        """The server's money Prepares, unanswered, until together they carry `total`."""
        held: list[IncomingPrepare] = []
        while sum(incoming.amount for incoming in held) < total:
            held.append(await self.next_money())
        return held

    async def next_prepare(self, within: timedelta = timedelta(seconds=10)) -> IncomingPrepare:
        """The next Prepare the server sent, money or control (control ones are answered already)."""
        async with asyncio.timeout(within.total_seconds()):
            return await self._every.get()

    async def receive_until_closed(
        self, stream_id: int = PAYEE_STREAM, within: timedelta = timedelta(seconds=10)
    ) -> int:
        """An honest payee: fulfil every money Prepare until the server closes `stream_id`; what arrived."""
        received = 0
        while True:
            if not self._money.empty():
                incoming = self._money.get_nowait()
            elif stream_id in self.closed_streams:
                return received
            elif (next_money := await self._money_or_a_close(within)) is not None:
                incoming = next_money
            else:
                continue
            if not self.fulfillable(incoming):
                await self.reject(incoming, arrived=self.arrived(incoming))  # a rate probe
                continue
            await self.fulfill(incoming)
            received += incoming.amount

    async def _money_or_a_close(self, within: timedelta) -> IncomingPrepare | None:
        """The next money Prepare, or None once the server closes a stream, whichever comes first."""
        self._closes.clear()
        money = asyncio.ensure_future(self._money.get())
        closes = asyncio.ensure_future(self._closes.wait())
        done, _ = await asyncio.wait(
            {money, closes}, timeout=within.total_seconds(), return_when=asyncio.FIRST_COMPLETED
        )
        closes.cancel()
        if money in done:
            return money.result()
        money.cancel()
        if not done:
            raise TimeoutError(f"neither money nor a closed stream for {within}")
        return None

    async def fulfill(self, incoming: IncomingPrepare) -> None:
        """Answer with the right fulfillment and a STREAM reply, and book it as paid if still in time."""
        in_time = not incoming.expired()
        await self.link.respond(incoming.request_id, self.fulfillment(incoming))
        if in_time and incoming.request_id not in self.fulfilled:
            self.fulfilled.add(incoming.request_id)
            self.paid += incoming.amount
        elif not in_time:
            self.fulfilled_late += incoming.amount

    async def fulfill_wrongly(self, incoming: IncomingPrepare) -> None:
        """Answer with a Fulfill whose fulfillment does not match the condition (never paid)."""
        wrong = ilp.Fulfill(bytes(32), self.fulfillment(incoming).data)
        await self.link.respond(incoming.request_id, wrong)

    def fulfillment(self, incoming: IncomingPrepare) -> ilp.Fulfill:
        arrived = self.arrived(incoming)
        frames: list[Frame] = []
        for money in self._money_frames(incoming):
            self.received[money.stream_id] = self.received.get(money.stream_id, 0) + arrived
            if self.reports_received:
                receive_max = self._receive_max.get(money.stream_id, 2**64 - 1)
                frames.append(StreamMaxMoney(money.stream_id, receive_max, self.received[money.stream_id]))
        sequence = incoming.packet.sequence if incoming.packet is not None else 0
        reply = StreamPacket(sequence, ilp.IlpPacketType.FULFILL, arrived, tuple(frames))
        return ilp.Fulfill(self.keys.fulfillment(incoming.prepare.data), encrypt_packet(self.keys, reply))

    def arrived(self, incoming: IncomingPrepare) -> int:
        """What our replies say arrived of `incoming` (in our units, at `rate`)."""
        return int(incoming.amount * self.rate)

    def fulfillable(self, incoming: IncomingPrepare) -> bool:
        """Whether we could fulfil it: not so for the server's rate probes (random conditions)."""
        return sha256(self.keys.fulfillment(incoming.prepare.data)) == incoming.prepare.execution_condition

    @staticmethod
    def _money_frames(incoming: IncomingPrepare) -> list[StreamMoney]:
        frames = incoming.packet.frames if incoming.packet is not None else ()
        return [frame for frame in frames if isinstance(frame, StreamMoney)]

    async def reject(
        self,
        incoming: IncomingPrepare,
        code: str = ilp.ErrorCode.F99_APPLICATION_ERROR,
        *,
        arrived: int = 0,
    ) -> None:
        """Refuse it with a STREAM reply saying `arrived` arrived (a receiver's says what did; a hostile one
        may say anything: the default, 0, is below any minimum the sender set)."""
        sequence = incoming.packet.sequence if incoming.packet is not None else 0
        reply = StreamPacket(sequence, ilp.IlpPacketType.REJECT, arrived, ())
        data = encrypt_packet(self.keys, reply)
        await self.link.respond(incoming.request_id, ilp.Reject(code, self.address, "payee refuses", data))

    async def _sort_incoming(self) -> None:
        """Money Prepares go to the script; amount-0 (control) Prepares are answered at once, as any
        receiver does (F99 with a STREAM reply)."""
        while True:
            request_id, prepare = await self.link.incoming.get()
            try:
                packet: StreamPacket | None = decrypt_packet(self.keys, prepare.data)
            except (DecryptionError, DecodeError):
                packet = None
            incoming = IncomingPrepare(request_id, prepare, packet)
            self._every.put_nowait(incoming)
            if prepare.amount == 0:
                await self.reject(incoming)
            else:
                self._money.put_nowait(incoming)
            if (
                closed := {f.stream_id for f in packet.frames if isinstance(f, StreamClose)}
                if packet
                else set()
            ):
                self.closed_streams |= closed
                self._closes.set()
