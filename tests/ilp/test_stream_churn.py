"""A payee that opens and closes streams in every packet, against a real server process: the pull still pays
exactly what is debited (the pull's own stream stays readable to it however many streams close after it),
frames for long-closed streams are answered as for closed ones, and a push connection whose payer opens and
closes a stream in the packet that pays still records the payment."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from spsp_pull.payee import query
from spsp_pull.store import models
from spsp_pull.store.database import Database
from stream import ilp
from stream.frames import (
    ConnectionAssetDetails,
    ConnectionNewAddress,
    Frame,
    StreamClose,
    StreamErrorCode,
    StreamMaxMoney,
    StreamMoney,
)
from stream.packet import decrypt_packet
from tests.ilp.hostile.harness import PACKET, SETTLE_WITHIN, hostile_server
from tests.ilp.hostile.payee import HostilePayee

CHURN_PACKETS = 150
STREAMS_PER_PACKET = 8
ALREADY_CLOSED = (StreamErrorCode.STREAM_STATE_ERROR, "Stream is already closed")


def churn_frames(first_id: int) -> tuple[Frame, ...]:
    """Open STREAMS_PER_PACKET streams from `first_id` on and close them, in one packet."""
    frames: list[Frame] = []
    for stream_id in range(first_id, first_id + 2 * STREAMS_PER_PACKET, 2):
        frames += [StreamMaxMoney(stream_id, 1, 0), StreamClose(stream_id, StreamErrorCode.NO_ERROR, "")]
    return tuple(frames)


async def churn(payee: HostilePayee, first_id: int, packets: int) -> int:
    """`packets` churning packets from stream `first_id` on; the next free stream id."""
    for _ in range(packets):
        reply = await payee.send_frames(*churn_frames(first_id))
        assert isinstance(reply, ilp.Reject) and reply.code == "F99"  # unfulfillable: frames read, then F99
        first_id += 2 * STREAMS_PER_PACKET
    return first_id


async def test_a_pull_amid_thousands_of_streams_opened_and_closed_pays_exactly_what_is_debited(
    backend: str, tmp_path: Path
) -> None:
    async with hostile_server(backend, tmp_path) as harness:
        pointer = await harness.pointer(4 * PACKET)
        payee = await harness.payee(pointer)
        await payee.open_stream(receive_max=4 * PACKET)
        next_id = await churn(payee, 3, CHURN_PACKETS // 3)
        for incoming in await payee.money(2):
            await payee.fulfill(incoming)
        next_id = await churn(payee, next_id, CHURN_PACKETS // 3)
        await payee.receive_until_closed()  # the server ends stream 1 at the pointer's amount
        # Its stream closed, the pull drains and settles while many more streams open and close.
        next_id = await churn(payee, next_id, CHURN_PACKETS // 3)
        reply = await payee.send_frames(StreamMoney(3, 1), amount=1)
        assert isinstance(reply, ilp.Reject)
        frames = decrypt_packet(payee.keys, reply.data).frames
        assert StreamClose(3, *ALREADY_CLOSED) in frames
        assert next_id > 2 * STREAMS_PER_PACKET * CHURN_PACKETS - 2 * STREAMS_PER_PACKET
        ledger = await harness.check(pointer, [payee])
        assert ledger.debited == payee.paid == 4 * PACKET
        await payee.close_connection()


async def test_a_push_whose_payer_opens_and_closes_a_stream_in_the_paying_packet_is_recorded(
    backend: str, tmp_path: Path
) -> None:
    async with hostile_server(backend, tmp_path) as harness:
        details = await query(f"{harness.server.url}/.well-known/pay")
        url = f"ws://127.0.0.1:{harness.server.btp_port}"
        payer = await HostilePayee.join(url, "payer", details.destination_account, details.shared_secret)
        harness.payees.append(payer)
        reply = await payer.send_frames(
            ConnectionNewAddress(payer.address),
            ConnectionAssetDetails(payer.asset.asset_code, payer.asset.asset_scale),
            StreamMaxMoney(1, 0, 0),
        )
        assert isinstance(reply, ilp.Reject)
        opened_and_closed = (StreamMaxMoney(3, 0, 0), StreamClose(3, StreamErrorCode.NO_ERROR, ""))
        reply = await payer.send_frames(*opened_and_closed, StreamMoney(1, 1), amount=700)
        assert isinstance(reply, ilp.Fulfill), reply
        await payer.close_connection()
        assert await recorded_pushes(harness.db) == [700]


async def recorded_pushes(db: Database) -> list[int]:
    """The push payments recorded, once there is one (the server process records it on the close)."""
    async with asyncio.timeout(SETTLE_WITHIN.total_seconds()):
        while True:
            async with db.read() as session:
                amounts = list(await session.scalars(select(models.PushPayment.amount)))
            if amounts:
                return amounts
            await asyncio.sleep(0.05)
