"""CPU per packet of a server `StreamConnection` whose peer opens and closes streams in every packet.

    .venv/bin/python -m bench.stream_churn                   # 1,500 packets, 8 streams each
    .venv/bin/python -m bench.stream_churn --packets 3000 --streams 8

The peer (a scripted client built on `stream.packet`) sends amount-0 fulfillable Prepares, each opening
`--streams` new streams (StreamMaxMoney) and closing them (StreamClose) in the same packet, as a hostile
payee can. The server connection's owner behaves like the pull server's: it keeps the first stream open and
closes every other stream the peer opens. Each packet costs `handle_prepare` plus the owner's reaction and
`poll` until there is nothing to send (what the server sends is answered by the peer at once). Reported: the
median ms per packet over the first 100 packets and over the last 100, and what the connection still holds.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

from stream.connection import StreamConnection, StreamOpened
from stream.crypto import StreamKeys
from stream.frames import ConnectionNewAddress, Frame, StreamClose, StreamErrorCode, StreamMaxMoney
from stream.ilp import Fulfill, IlpPacketType, Prepare
from stream.oer import U64_MAX
from stream.packet import StreamPacket, decrypt_packet, encrypt_packet

NOW = datetime(2030, 1, 1, tzinfo=UTC)
SERVER = "test.bench.server.conn"
CLIENT = "test.bench.client"
KEYS = StreamKeys(bytes(range(32)))
WINDOW = 100


class ChurningPeer:
    """Opens `per_packet` fresh streams and closes them in each Prepare; stream 1 stays open."""

    def __init__(self, per_packet: int) -> None:
        self.per_packet = per_packet
        self.sequence = 0
        self.next_stream = 3

    def prepare(self) -> Prepare:
        self.sequence += 1
        frames: list[Frame] = []
        if self.sequence == 1:
            frames += [ConnectionNewAddress(CLIENT), StreamMaxMoney(1, U64_MAX, 0)]
        for _ in range(self.per_packet):
            stream_id, self.next_stream = self.next_stream, self.next_stream + 2
            frames += [
                StreamMaxMoney(stream_id, U64_MAX, 0),
                StreamClose(stream_id, StreamErrorCode.NO_ERROR, ""),
            ]
        data = encrypt_packet(KEYS, StreamPacket(self.sequence, IlpPacketType.PREPARE, 0, tuple(frames)))
        return Prepare(0, NOW + timedelta(seconds=30), KEYS.condition(data), SERVER, data)

    @staticmethod
    def answer(prepare: Prepare) -> Fulfill:
        request = decrypt_packet(KEYS, prepare.data)
        reply = StreamPacket(request.sequence, IlpPacketType.FULFILL, prepare.amount, ())
        return Fulfill(KEYS.fulfillment(prepare.data), encrypt_packet(KEYS, reply))


def one_packet(server: StreamConnection, peer: ChurningPeer) -> None:
    server.handle_prepare(peer.prepare(), NOW)
    for event in server.drain_events():
        if isinstance(event, StreamOpened) and event.by_remote and event.stream_id != 1:
            server.close_stream(event.stream_id)
    while (out := server.poll(NOW)) is not None:
        server.handle_reply(out.id, peer.answer(out.prepare), NOW)
    server.drain_events()


def run(packets: int, per_packet: int) -> tuple[list[float], StreamConnection]:
    server = StreamConnection(keys=KEYS, is_server=True, local_address=SERVER, now=NOW)
    peer = ChurningPeer(per_packet)
    took: list[float] = []
    for _ in range(packets):
        started = time.perf_counter()
        one_packet(server, peer)
        took.append((time.perf_counter() - started) * 1000)
    return took, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1500)
    parser.add_argument("--streams", type=int, default=8, help="streams opened and closed per packet")
    args = parser.parse_args()
    took, server = run(args.packets, args.streams)
    first = statistics.median(took[:WINDOW])
    last = statistics.median(took[-WINDOW:])
    print(f"packets {args.packets}, streams opened and closed per packet {args.streams}")
    print(f"ms per packet, median of packets 1-{WINDOW}: {first:.3f}")
    print(f"ms per packet, median of packets {args.packets - WINDOW + 1}-{args.packets}: {last:.3f}")
    print(f"ratio last / first: {last / first:.2f}x")
    print(f"streams the connection describes: {len(server.stream_ids)}; open: {server.is_open}")


if __name__ == "__main__":
    main()
