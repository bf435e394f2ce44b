"""A peer that opens and closes streams without end: the server connection forgets each stream once its close
is settled, so what it holds (and walks per packet) stays bounded, while frames for the streams it forgot are
answered as for any closed stream (RFC 0029: StreamClose StreamStateError for money or data, other frames
ignored, never a stream opened again). The peer also cannot hold more streams open than we advertise.

The peer is scripted on our own STREAM packet layer: every Prepare carries exactly the frames a test says."""

from datetime import timedelta

from stream.connection import MoneyReceived, StreamClosed, StreamConnection, StreamOpened
from stream.connection.connection import CLOSED_VIEWS_KEPT
from stream.crypto import StreamKeys
from stream.frames import (
    ConnectionClose,
    ConnectionMaxStreamId,
    ConnectionNewAddress,
    Frame,
    StreamClose,
    StreamData,
    StreamErrorCode,
    StreamMaxData,
    StreamMaxMoney,
    StreamMoney,
)
from stream.ilp import Fulfill, IlpPacketType, IlpReply, Prepare, Reject
from stream.oer import U64_MAX
from stream.packet import StreamPacket, decrypt_packet, encrypt_packet
from tests.stream.connection.harness import CLIENT_ADDRESS, CONNECTION_ADDRESS, SECRET, T0, make_pair

KEYS = StreamKeys(SECRET)
ALREADY_CLOSED = StreamClose(0, StreamErrorCode.STREAM_STATE_ERROR, "Stream is already closed")
CLOSED_BY_US_AT_MOST = 2 * 10  # what the default ConnectionMaxStreamId (20) lets the peer open at once


class ChurningPeer:
    """Sends the server Prepares whose frames it is told, numbering them; answers the server's Prepares."""

    def __init__(self, server: StreamConnection) -> None:
        self.server = server
        self.sequence = 0
        self.next_stream = 1
        self.opened: list[int] = []

    def send(self, frames: tuple[Frame, ...], amount: int = 0) -> tuple[IlpReply, tuple[Frame, ...]]:
        """The server's reply to a fulfillable Prepare carrying `frames`, and the frames of its STREAM reply;
        then whatever the server has to send is answered (fulfilled) at once."""
        self.sequence += 1
        if self.sequence == 1:
            frames = (ConnectionNewAddress(CLIENT_ADDRESS), *frames)
        data = encrypt_packet(KEYS, StreamPacket(self.sequence, IlpPacketType.PREPARE, 0, frames))
        prepare = Prepare(amount, T0 + timedelta(seconds=30), KEYS.condition(data), CONNECTION_ADDRESS, data)
        reply = self.server.handle_prepare(prepare, T0)
        self.answer_server()
        return reply, decrypt_packet(KEYS, reply.data).frames

    def answer_server(self) -> None:
        while (out := self.server.poll(T0)) is not None:
            request = decrypt_packet(KEYS, out.prepare.data)
            data = encrypt_packet(KEYS, StreamPacket(request.sequence, IlpPacketType.FULFILL, 0, ()))
            self.server.handle_reply(out.id, Fulfill(KEYS.fulfillment(out.prepare.data), data), T0)

    def churn(self, streams: int) -> tuple[IlpReply, tuple[Frame, ...]]:
        """Open `streams` new streams and close them, in one Prepare."""
        frames: list[Frame] = []
        for _ in range(streams):
            stream_id, self.next_stream = self.next_stream, self.next_stream + 2
            self.opened.append(stream_id)
            frames += [
                StreamMaxMoney(stream_id, U64_MAX, 0),
                StreamClose(stream_id, StreamErrorCode.NO_ERROR, ""),
            ]
        return self.send(tuple(frames))


def _server() -> StreamConnection:
    return make_pair()[1]


def _max_stream_ids(frames: tuple[Frame, ...]) -> list[int]:
    return [f.max_stream_id for f in frames if isinstance(f, ConnectionMaxStreamId)]


def test_thousands_of_streams_opened_and_closed_leave_the_connection_holding_a_bounded_few() -> None:
    server = _server()
    peer = ChurningPeer(server)
    held_after: dict[int, int] = {}
    reply_sizes: set[int] = set()
    for packet in range(1, 3001):
        reply, frames = peer.churn(8)
        assert isinstance(reply, Fulfill)
        if packet > 1:
            reply_sizes.add(len(frames))
        if packet in (100, 3000):
            held_after[packet] = server.remembered
        events = server.drain_events()
        assert len([e for e in events if isinstance(e, StreamOpened)]) == 8
        assert len([e for e in events if isinstance(e, StreamClosed)]) == 8
    assert len(peer.opened) == 24_000
    assert held_after[3000] == held_after[100] <= CLOSED_VIEWS_KEPT
    assert len(server.stream_ids) == CLOSED_VIEWS_KEPT
    # The replies do not grow either: ConnectionMaxData and ConnectionMaxStreamId frames only.
    assert len(reply_sizes) == 1 and max(reply_sizes) <= 2 + 8
    assert server.is_open


def test_frames_for_forgotten_streams_are_answered_as_for_closed_ones() -> None:
    server = _server()
    peer = ChurningPeer(server)
    for _ in range(50):
        peer.churn(8)
    oldest = peer.opened[0]
    server.drain_events()
    assert oldest not in server.stream_ids

    for frame in (StreamMoney(oldest, 1), StreamData(oldest, 0, b"x")):
        reply, frames = peer.send((frame,), amount=5)
        assert isinstance(reply, Reject) and reply.code == "F99"
        assert [f for f in frames if isinstance(f, StreamClose)] == [StreamClose(oldest, *_closed())]
    # Limits and closes for it are ignored: the Prepare is fulfilled, and no stream opens again.
    reply, frames = peer.send(
        (StreamMaxMoney(oldest, 100, 0), StreamMaxData(oldest, 100), StreamClose(oldest, 1, ""))
    )
    assert isinstance(reply, Fulfill)
    assert not [f for f in frames if isinstance(f, StreamClose | StreamMaxMoney)]
    assert server.drain_events() == []
    assert oldest not in server.stream_ids and server.total_received == 0


def _closed() -> tuple[int, str]:
    return ALREADY_CLOSED.error_code, ALREADY_CLOSED.message


def test_an_id_the_peer_skipped_is_still_a_new_stream_and_the_skipped_ones_are_few() -> None:
    server = _server()
    peer = ChurningPeer(server)
    peer.send((StreamMaxMoney(7, U64_MAX, 0), StreamClose(7, StreamErrorCode.NO_ERROR, "")))
    assert server.remembered == 1 + 3  # stream 7's view, and 1, 3, 5 skipped
    reply, _ = peer.send((StreamMaxMoney(3, U64_MAX, 0),))
    assert isinstance(reply, Fulfill)
    assert StreamOpened(3, by_remote=True) in server.drain_events()
    reply, frames = peer.send((StreamMoney(7, 1),), amount=1)
    assert isinstance(reply, Reject)
    assert StreamClose(7, *_closed()) in frames


def test_the_peer_cannot_hold_more_streams_open_than_advertised() -> None:
    server = _server()
    peer = ChurningPeer(server)
    _, frames = peer.send((StreamMaxMoney(1, U64_MAX, 0),))
    assert _max_stream_ids(frames) == [20]
    opening = tuple(StreamMaxMoney(stream_id, U64_MAX, 0) for stream_id in range(3, 20, 2))
    reply, _ = peer.send(opening)
    assert isinstance(reply, Fulfill)
    assert len([e for e in server.drain_events() if isinstance(e, StreamOpened)]) == 10
    reply, frames = peer.send((StreamMaxMoney(21, U64_MAX, 0),))
    assert isinstance(reply, Reject)
    closes = [f for f in frames if isinstance(f, ConnectionClose)]
    assert [c.error_code for c in closes] == [StreamErrorCode.STREAM_ID_ERROR]
    assert not server.is_open


def test_each_stream_the_peer_closes_lets_it_open_one_more_but_ours_it_closes_do_not() -> None:
    server = _server()
    peer = ChurningPeer(server)
    peer.send((StreamMaxMoney(1, U64_MAX, 0),))
    ours = server.open_stream()
    server.set_receive_max(ours, 10)
    peer.answer_server()
    _, frames = peer.send((StreamClose(ours, StreamErrorCode.NO_ERROR, ""), StreamClose(1, 1, "")))
    assert _max_stream_ids(frames) == [22]
    # Only its own streams count: with 1 closed it may hold 10 open again (3..21), not 11.
    reply, _ = peer.send(tuple(StreamMaxMoney(stream_id, U64_MAX, 0) for stream_id in range(3, 22, 2)))
    assert isinstance(reply, Fulfill)
    reply, _ = peer.send((StreamMaxMoney(23, U64_MAX, 0),))
    assert isinstance(reply, Reject) and not server.is_open


def test_our_own_forgotten_streams_are_closed_and_ids_we_never_opened_are_a_violation() -> None:
    server = _server()
    peer = ChurningPeer(server)
    peer.send((StreamMaxMoney(1, U64_MAX, 0),))
    ours = server.open_stream()
    server.close_stream(ours)
    peer.answer_server()
    peer.next_stream = 3
    for _ in range(CLOSED_VIEWS_KEPT // 8):
        peer.churn(8)  # pushes our stream's view out
    assert ours not in server.stream_ids
    reply, frames = peer.send((StreamMoney(ours, 1),), amount=1)
    assert isinstance(reply, Reject) and StreamClose(ours, *_closed()) in frames and server.is_open
    server.close_stream(ours)  # a forgotten stream stays closed, quietly
    reply, frames = peer.send((StreamMaxMoney(ours + 2, U64_MAX, 0),))
    closes = [f for f in frames if isinstance(f, ConnectionClose)]
    assert [c.error_code for c in closes] == [StreamErrorCode.PROTOCOL_VIOLATION]


def test_a_kept_stream_stays_readable_with_its_final_totals_whatever_closes_after_it() -> None:
    server = _server()
    peer = ChurningPeer(server)
    peer.send((StreamMaxMoney(1, U64_MAX, 0),))
    server.keep_stream(1)
    server.set_receive_max(1, 1000)
    peer.send((StreamMoney(1, 1),), amount=700)
    assert MoneyReceived(1, 700, 700) in server.drain_events()
    peer.send((StreamClose(1, StreamErrorCode.NO_ERROR, ""),))
    peer.next_stream = 3
    for _ in range(20):
        peer.churn(8)
    view = server.stream(1)
    assert (view.is_open, view.total_received, view.receive_max, view.closed_by_remote) == (
        False,
        700,
        1000,
        True,
    )
    assert server.remembered <= 1 + CLOSED_VIEWS_KEPT
