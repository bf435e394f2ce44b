"""A payee under the test's full control, built from the sans-I/O `stream` package over a raw BTP websocket.

It holds every Prepare the server sends until the test says what to do with it (fulfil now or later, reject,
never answer), and says any STREAM frames it likes in its own Prepares. Nothing is answered by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

from websockets.asyncio.client import ClientConnection, connect

from stream import btp, ilp
from stream.crypto import StreamKeys
from stream.errors import DecryptionError
from stream.frames import (
    ConnectionAssetDetails,
    ConnectionNewAddress,
    Frame,
    StreamClose,
    StreamMaxMoney,
)
from stream.ilp import IlpPacketType
from stream.packet import StreamPacket, decrypt_packet, encrypt_packet

PAYEE_STREAM = 1
WAIT = timedelta(seconds=10)  # the longest any step waits for the server


@dataclass(frozen=True, slots=True)
class Incoming:
    """A Prepare from the server, with its BTP request id and the STREAM packet inside."""

    request_id: int
    prepare: ilp.Prepare
    packet: StreamPacket

    def closes_stream(self, stream_id: int = PAYEE_STREAM) -> bool:
        return any(isinstance(f, StreamClose) and f.stream_id == stream_id for f in self.packet.frames)


class ScriptedPayee:
    def __init__(self, ws: ClientConnection, address: str, destination: str, secret: bytes) -> None:
        self._ws = ws
        self.address = address
        self.destination = destination
        self.secret = secret
        self._keys = StreamKeys(secret)
        self._sequence = 0
        self._answers: dict[int, asyncio.Future[bytes]] = {}
        self.incoming: asyncio.Queue[Incoming] = asyncio.Queue()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def connect(
        cls, btp_url: str, server_address: str, username: str, destination: str, secret: bytes
    ) -> ScriptedPayee:
        """Log in to the server's BTP endpoint as account `username` (its address is then
        `<server address>.<username>`)."""
        ws = await connect(btp_url, compression=None)
        await ws.send(btp.encode(btp.auth_message(1, username, f"{username}-token")))
        answer = btp.decode(await ws.recv(decode=False))
        if not isinstance(answer, btp.Response):
            await ws.close()
            raise ConnectionError(f"BTP auth refused: {answer}")
        return cls(ws, f"{server_address}.{username}", destination, secret)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.drop()

    async def drop(self) -> None:
        """Close the websocket: the BTP link is gone, whatever was in flight with it."""
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    # --- what the payee says -------------------------------------------------------------------------------

    async def say(self, *frames: Frame) -> ilp.IlpReply:
        """Send the server an amount-0 Prepare carrying `frames`; its reply."""
        self._sequence += 1
        data = encrypt_packet(self._keys, StreamPacket(self._sequence, IlpPacketType.PREPARE, 0, frames))
        prepare = ilp.Prepare(
            amount=0,
            expires_at=datetime.now(UTC) + timedelta(seconds=30),
            execution_condition=self._keys.condition(data),
            destination=self.destination,
            data=data,
        )
        request_id = secrets.randbits(32)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._answers[request_id] = future
        await self._ws.send(btp.encode(btp.ilp_message(request_id, ilp.encode(prepare))))
        async with asyncio.timeout(WAIT.total_seconds()):
            return ilp.decode_reply(await future)

    async def open(self, receive_max: int) -> None:
        """Introduce ourselves and open our stream, willing to receive `receive_max` in all."""
        await self.say(
            ConnectionNewAddress(self.address),
            ConnectionAssetDetails("XRP", 9),
            StreamMaxMoney(PAYEE_STREAM, receive_max, 0),
        )

    async def next_prepare(self) -> Incoming:
        async with asyncio.timeout(WAIT.total_seconds()):
            return await self.incoming.get()

    async def money_prepares(self, total: int) -> list[Incoming]:
        """Collect the server's Prepares until they carry `total` (control-only ones are fulfilled)."""
        held: list[Incoming] = []
        while sum(i.prepare.amount for i in held) < total:
            incoming = await self.next_prepare()
            if incoming.prepare.amount:
                held.append(incoming)
            else:
                await self.fulfil(incoming)
        return held

    async def fulfil(self, incoming: Incoming, fulfillment: bytes | None = None) -> None:
        """Answer with the Fulfill (or one with `fulfillment`), its STREAM reply saying what arrived."""
        prepare = incoming.prepare
        reply = StreamPacket(incoming.packet.sequence, IlpPacketType.FULFILL, prepare.amount)
        fulfill = ilp.Fulfill(
            fulfillment or self._keys.fulfillment(prepare.data), encrypt_packet(self._keys, reply)
        )
        await self._ws.send(btp.encode(btp.ilp_response(incoming.request_id, ilp.encode(fulfill))))

    async def reject(self, incoming: Incoming) -> None:
        """Answer with an F99 Reject, its STREAM reply saying nothing arrived."""
        reply = StreamPacket(incoming.packet.sequence, IlpPacketType.REJECT, 0)
        rejected = ilp.Reject(
            ilp.ErrorCode.F99_APPLICATION_ERROR, self.address, "", encrypt_packet(self._keys, reply)
        )
        await self._ws.send(btp.encode(btp.ilp_response(incoming.request_id, ilp.encode(rejected))))

    async def receive_until_closed(self) -> int:
        """An honest payee: fulfil everything until the server closes our stream; what arrived."""
        received = 0
        while True:
            incoming = await self.next_prepare()
            await self.fulfil(incoming)
            received += incoming.prepare.amount
            if incoming.closes_stream():
                return received

    # --- reading -------------------------------------------------------------------------------------------

    async def _read(self) -> None:
        async for data in self._ws:
            assert isinstance(data, bytes)
            packet = btp.decode(data)
            payload = btp.ilp_payload(packet)
            if isinstance(packet, btp.Response) and packet.request_id in self._answers:
                assert payload is not None
                self._answers.pop(packet.request_id).set_result(payload)
            elif isinstance(packet, btp.Message) and payload is not None:
                prepare = ilp.decode_prepare(payload)
                try:
                    inner = decrypt_packet(self._keys, prepare.data)
                except DecryptionError:  # another connection's, to the same account
                    unexpected = ilp.Reject(ilp.ErrorCode.F06_UNEXPECTED_PAYMENT, self.address, "", b"")
                    await self._ws.send(
                        btp.encode(btp.ilp_response(packet.request_id, ilp.encode(unexpected)))
                    )
                    continue
                self.incoming.put_nowait(Incoming(packet.request_id, prepare, inner))
