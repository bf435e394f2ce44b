"""Hostile or broken input: every Prepare gets a typed ILP reply and every reply is absorbed, never an
exception."""

from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream import frames, ilp
from stream.connection import (
    ConnectionClosed,
    ConnectionOptions,
    MoneyReceived,
    PacketKind,
    StreamClosed,
    StreamConnection,
    StreamOpened,
)
from stream.crypto import StreamKeys, random_condition
from stream.frames import (
    ConnectionClose,
    ConnectionMaxData,
    ConnectionNewAddress,
    Frame,
    StreamClose,
    StreamErrorCode,
    StreamMaxData,
    StreamMaxMoney,
    StreamMoney,
)
from stream.ilp import ErrorCode, Fulfill, IlpPacketType, Prepare, Reject
from stream.oer import Writer
from stream.packet import STREAM_VERSION, StreamPacket, decrypt_packet, encrypt_packet
from tests.stream.connection.harness import (
    CLIENT_ADDRESS,
    CONNECTION_ADDRESS,
    SECRET,
    SERVER_ADDRESS,
    T0,
    make_pair,
)

KEYS = StreamKeys(SECRET)
OTHER_KEYS = StreamKeys(bytes(32))


def _prepare(
    packet_frames: tuple[Frame, ...] = (),
    *,
    amount: int = 0,
    sequence: int = 1,
    prepare_amount: int = 0,
    fulfillable: bool = True,
    keys: StreamKeys = KEYS,
    packet_type: IlpPacketType = IlpPacketType.PREPARE,
) -> Prepare:
    data = encrypt_packet(keys, StreamPacket(sequence, packet_type, prepare_amount, packet_frames))
    condition = keys.condition(data) if fulfillable else random_condition()
    return Prepare(amount, T0 + timedelta(seconds=30), condition, CONNECTION_ADDRESS, data)


def _server() -> StreamConnection:
    return make_pair()[1]


def _reply_packet(reply: ilp.IlpReply) -> StreamPacket:
    return decrypt_packet(KEYS, reply.data)


def _opened_server(receive_max: int = 1000) -> StreamConnection:
    server = _server()
    server.handle_prepare(
        _prepare((ConnectionNewAddress(CLIENT_ADDRESS), StreamMaxMoney(1, 5000, 0), StreamMaxData(1, 16384))),
        T0,
    )
    server.set_receive_max(1, receive_max)
    server.drain_events()
    return server


def test_garbage_data_is_unexpected_payment() -> None:
    reply = _server().handle_prepare(
        Prepare(5, T0, bytes(32), CONNECTION_ADDRESS, b"not a stream packet"), T0
    )
    assert reply == Reject(ErrorCode.F06_UNEXPECTED_PAYMENT, SERVER_ADDRESS, "", b"")


def test_empty_data_is_unexpected_payment() -> None:
    reply = _server().handle_prepare(Prepare(0, T0, bytes(32), CONNECTION_ADDRESS, b""), T0)
    assert isinstance(reply, Reject) and reply.code == "F06"


def test_wrong_key_is_unexpected_payment() -> None:
    reply = _server().handle_prepare(_prepare((StreamMoney(1, 1),), amount=1, keys=OTHER_KEYS), T0)
    assert isinstance(reply, Reject) and reply.code == "F06"


def test_tampered_data_is_unexpected_payment() -> None:
    prepare = _prepare((StreamMoney(1, 1),), amount=1)
    tampered = replace(prepare, data=prepare.data[:-1] + bytes([prepare.data[-1] ^ 1]))
    reply = _server().handle_prepare(tampered, T0)
    assert isinstance(reply, Reject) and reply.code == "F06"


def test_wrong_stream_packet_type_is_unexpected_payment() -> None:
    for packet_type in (IlpPacketType.FULFILL, IlpPacketType.REJECT):
        reply = _server().handle_prepare(_prepare(packet_type=packet_type), T0)
        assert isinstance(reply, Reject) and reply.code == "F06"


def test_undecodable_plaintext_is_unexpected_payment() -> None:
    for plaintext in (
        b"",
        bytes([STREAM_VERSION]),
        bytes([2, 12, 1, 0, 1, 0, 1, 0]),
        bytes([1, 12, 1, 0, 1, 0, 1, 5]),
    ):
        data = KEYS.encrypt(plaintext)
        reply = _server().handle_prepare(Prepare(0, T0, KEYS.condition(data), CONNECTION_ADDRESS, data), T0)
        assert isinstance(reply, Reject) and reply.code == "F06"


def test_unknown_and_duplicate_frames_are_tolerated() -> None:
    writer = Writer()
    writer.write(bytes([STREAM_VERSION, IlpPacketType.PREPARE]))
    writer.write_var_uint(7)
    writer.write_var_uint(0)
    known: list[Frame] = [
        ConnectionNewAddress(CLIENT_ADDRESS),
        StreamMaxMoney(1, 10, 0),
        StreamMaxMoney(1, 10, 0),
    ]
    writer.write_var_uint(len(known) + 1)
    writer.write(bytes([0x30, 3, 1, 2, 3]))
    for frame in known:
        frames.write_frame(writer, frame)
    data = KEYS.encrypt(writer.to_bytes() + bytes(9))
    server = _server()
    reply = server.handle_prepare(Prepare(0, T0, KEYS.condition(data), CONNECTION_ADDRESS, data), T0)
    assert isinstance(reply, Fulfill)
    assert _reply_packet(reply).sequence == 7
    assert server.stream(1).remote_receive_max == 10
    assert server.remote_address == CLIENT_ADDRESS


def test_sequences_need_not_be_contiguous_or_unique() -> None:
    server = _opened_server()
    for sequence in (9, 3, 3, 2**31 + 5, 0):
        reply = server.handle_prepare(_prepare((StreamMoney(1, 1),), amount=10, sequence=sequence), T0)
        assert isinstance(reply, Fulfill)
        assert _reply_packet(reply).sequence == sequence
    assert server.stream(1).total_received == 50


def test_client_opening_an_even_stream_is_a_protocol_violation() -> None:
    server = _server()
    reply = server.handle_prepare(_prepare((StreamMaxMoney(2, 100, 0),)), T0)
    assert isinstance(reply, Reject) and reply.code == "F99"
    packet = _reply_packet(reply)
    assert packet.ilp_packet_type is IlpPacketType.REJECT
    closes = [f for f in packet.frames if isinstance(f, ConnectionClose)]
    assert closes and closes[0].error_code == StreamErrorCode.PROTOCOL_VIOLATION
    assert 2 not in server.stream_ids
    assert server.is_closed
    assert server.drain_events()[-1].error_code == StreamErrorCode.PROTOCOL_VIOLATION  # type: ignore[union-attr]


def test_server_opening_an_odd_stream_is_a_protocol_violation() -> None:
    client = make_pair()[0]
    client.open_stream()
    reply = client.handle_prepare(_prepare((StreamMoney(3, 1),), amount=1), T0)
    assert isinstance(reply, Reject)
    assert any(
        isinstance(f, ConnectionClose) and f.error_code == StreamErrorCode.PROTOCOL_VIOLATION
        for f in _reply_packet(reply).frames
    )
    assert not client.is_open


def test_stream_id_above_the_maximum() -> None:
    server = _server()
    reply = server.handle_prepare(_prepare((StreamMaxMoney(21, 100, 0),)), T0)
    assert isinstance(reply, Reject)
    closes = [f for f in _reply_packet(reply).frames if isinstance(f, ConnectionClose)]
    assert closes[0].error_code == StreamErrorCode.STREAM_ID_ERROR
    ok = _server().handle_prepare(_prepare((StreamMaxMoney(19, 100, 0),)), T0)
    assert isinstance(ok, Fulfill)


def test_prepare_amount_above_the_amount_is_rejected() -> None:
    server = _opened_server()
    reply = server.handle_prepare(_prepare((StreamMoney(1, 1),), amount=99, prepare_amount=100), T0)
    assert isinstance(reply, Reject) and reply.code == "F99"
    assert _reply_packet(reply).prepare_amount == 99
    assert server.stream(1).total_received == 0


def test_unfulfillable_money_is_rejected_with_the_arrived_amount() -> None:
    server = _opened_server()
    reply = server.handle_prepare(_prepare((StreamMoney(1, 1),), amount=77, fulfillable=False), T0)
    assert isinstance(reply, Reject)
    packet = _reply_packet(reply)
    assert (packet.prepare_amount, packet.frames) == (77, (ConnectionMaxData(65534),))


def test_money_beyond_the_receive_limit_is_rejected_with_the_limit() -> None:
    server = _opened_server(receive_max=1000)
    assert isinstance(server.handle_prepare(_prepare((StreamMoney(1, 1),), amount=1010), T0), Fulfill)
    server = _opened_server(receive_max=1000)
    reply = server.handle_prepare(_prepare((StreamMoney(1, 1),), amount=1011), T0)
    assert isinstance(reply, Reject)
    assert StreamMaxMoney(1, 1000, 0) in _reply_packet(reply).frames
    assert server.stream(1).total_received == 0


def test_money_is_split_by_shares_with_the_remainder_to_the_lowest_id() -> None:
    server = _opened_server(receive_max=1000)
    server.handle_prepare(_prepare((StreamMaxMoney(3, 0, 0),)), T0)
    server.set_receive_max(3, 1000)
    server.drain_events()
    reply = server.handle_prepare(_prepare((StreamMoney(3, 1), StreamMoney(1, 2)), amount=100), T0)
    assert isinstance(reply, Fulfill)
    assert server.stream(1).total_received == 67
    assert server.stream(3).total_received == 33
    assert server.drain_events() == [MoneyReceived(3, 33, 33), MoneyReceived(1, 67, 67)]


def test_money_without_a_stream_is_rejected() -> None:
    server = _opened_server()
    reply = server.handle_prepare(_prepare((), amount=10), T0)
    assert isinstance(reply, Reject) and reply.code == "F99"
    zero_shares = server.handle_prepare(_prepare((StreamMoney(1, 0),), amount=10), T0)
    assert isinstance(zero_shares, Reject)
    assert server.total_received == 0


def test_money_for_a_closed_stream_is_rejected() -> None:
    server = _opened_server()
    server.handle_prepare(_prepare((StreamClose(1, StreamErrorCode.NO_ERROR, ""),)), T0)
    assert server.drain_events() == [StreamClosed(1, StreamErrorCode.NO_ERROR, "", by_remote=True)]
    reply = server.handle_prepare(_prepare((StreamMoney(1, 1),), amount=5), T0)
    assert isinstance(reply, Reject)
    assert (
        StreamClose(1, StreamErrorCode.STREAM_STATE_ERROR, "Stream is already closed")
        in _reply_packet(reply).frames
    )
    control = server.handle_prepare(_prepare((StreamMaxMoney(1, 10, 0),)), T0)
    assert isinstance(control, Fulfill)


def test_connection_close_with_an_error_code() -> None:
    server = _opened_server()
    reply = server.handle_prepare(
        _prepare((ConnectionClose(StreamErrorCode.APPLICATION_ERROR, "bye"),), fulfillable=False), T0
    )
    assert isinstance(reply, Reject)
    assert server.is_closed
    events = server.drain_events()
    assert events[-2:] == [
        StreamClosed(1, StreamErrorCode.APPLICATION_ERROR, "bye", by_remote=True),
        ConnectionClosed(StreamErrorCode.APPLICATION_ERROR, "bye", by_remote=True),
    ]
    assert server.poll(T0) is None


def test_amount_zero_control_prepares_are_fulfilled() -> None:
    server = _server()
    prepare = _prepare((StreamMaxMoney(1, 3000, 0), StreamMaxData(1, 16384)))
    reply = server.handle_prepare(prepare, T0)
    assert isinstance(reply, Fulfill)
    assert reply.fulfillment == KEYS.fulfillment(prepare.data)
    assert _reply_packet(reply).frames == (
        ConnectionMaxData(65534),
        StreamMaxMoney(1, 0, 0),
        StreamMaxData(1, 16384),
    )
    assert server.drain_events()[0] == StreamOpened(1, by_remote=True)


def _money_out(server: StreamConnection) -> tuple[StreamConnection, int, Prepare]:
    server.set_send_max(1, 500)
    out = server.poll(T0)
    assert out is not None and out.kind is PacketKind.STREAM and out.prepare.amount == 500
    return server, out.id, out.prepare


def test_reply_with_undecryptable_data_closes_the_connection() -> None:
    server, packet_id, _ = _money_out(_opened_server())
    server.handle_reply(packet_id, Reject("F99", CLIENT_ADDRESS, "", b"garbage garbage garbage garbage!"), T0)
    assert server.stream(1).total_sent == 0
    assert server.stream(1).in_flight == 0
    assert not server.is_open
    closing = server.poll(T0)
    assert closing is not None and closing.kind is PacketKind.CLOSE


def test_reply_with_a_wrong_sequence_closes_the_connection() -> None:
    server, packet_id, prepare = _money_out(_opened_server())
    data = encrypt_packet(KEYS, StreamPacket(packet_id + 1, IlpPacketType.FULFILL, 500, ()))
    server.handle_reply(packet_id, Fulfill(KEYS.fulfillment(prepare.data), data), T0)
    assert server.stream(1).total_sent == 500
    assert not server.is_open


def test_wrong_fulfillment_closes_the_connection_without_counting_money() -> None:
    server, packet_id, _ = _money_out(_opened_server())
    server.handle_reply(packet_id, Fulfill(bytes(32)), T0)
    assert server.stream(1).total_sent == 0
    assert server.close_reason is not None
    assert server.close_reason[0] == StreamErrorCode.INTERNAL_ERROR


def test_unknown_reply_ids_are_ignored() -> None:
    server = _opened_server()
    server.handle_reply(12345, Fulfill(bytes(32)), T0)
    assert server.is_open


def test_max_packet_amount_of_zero_closes_the_connection() -> None:
    server, packet_id, _ = _money_out(_opened_server())
    details = ilp.encode_max_packet_details(ilp.MaxPacketDetails(500, 0))
    server.handle_reply(packet_id, Reject("F08", "test.connector", "", details), T0)
    assert not server.is_open


def test_f08_without_data_halves_the_packet() -> None:
    server, packet_id, _ = _money_out(_opened_server())
    server.handle_reply(packet_id, Reject("F08", "test.connector", "", b""), T0)
    assert server.max_packet_amount == 499
    out = server.poll(T0)
    assert out is not None and out.prepare.amount == 249


def test_t_errors_back_off() -> None:
    server, packet_id, _ = _money_out(_opened_server())
    server.handle_reply(packet_id, Reject("T05", "test.connector", "", b""), T0)
    assert server.poll(T0) is None
    assert server.next_wakeup() == T0 + timedelta(milliseconds=100)
    out = server.poll(T0 + timedelta(milliseconds=100))
    assert out is not None
    server.handle_reply(out.id, Reject("T05", "test.connector", "", b""), T0 + timedelta(milliseconds=100))
    assert server.next_wakeup() == T0 + timedelta(milliseconds=300)


def test_idle_timeout_closes_the_connection() -> None:
    server = _opened_server(receive_max=0)
    assert server.next_wakeup() == T0 + timedelta(seconds=60)
    assert server.poll(T0 + timedelta(seconds=59)) is None
    closing = server.poll(T0 + timedelta(seconds=60))
    assert closing is not None and closing.kind is PacketKind.CLOSE
    packet = decrypt_packet(KEYS, closing.prepare.data)
    assert packet.frames == (
        ConnectionClose(StreamErrorCode.INTERNAL_ERROR, "Connection timed out due to inactivity"),
    )
    server.handle_reply(closing.id, Reject("F99", CLIENT_ADDRESS, "", b""), T0 + timedelta(seconds=60))
    assert server.is_closed
    assert server.next_wakeup() is None


def test_idle_without_a_remote_address_just_closes() -> None:
    server = StreamConnection(
        keys=KEYS, is_server=True, local_address=SERVER_ADDRESS, now=T0, options=ConnectionOptions()
    )
    assert server.poll(T0 + timedelta(minutes=1)) is None
    assert server.is_closed


def test_closed_connection_answers_with_its_connection_close() -> None:
    server = _opened_server()
    server.close(StreamErrorCode.APPLICATION_ERROR, "shutting down")
    closing = server.poll(T0)
    assert closing is not None
    server.handle_reply(closing.id, Reject("F99", CLIENT_ADDRESS, "", b""), T0)
    assert server.is_closed
    reply = server.handle_prepare(_prepare((StreamMoney(1, 1),), amount=5), T0)
    assert isinstance(reply, Reject)
    assert ConnectionClose(StreamErrorCode.APPLICATION_ERROR, "shutting down") in _reply_packet(reply).frames


u64 = st.integers(0, 2**64 - 1)
small = st.integers(0, 25)
texts = st.text(max_size=8)
frame_strategy = st.one_of(
    st.builds(ConnectionClose, st.integers(0, 255), texts),
    st.builds(ConnectionNewAddress, st.sampled_from([CLIENT_ADDRESS, "not an address", "", "g.x"])),
    st.builds(frames.ConnectionAssetDetails, texts, st.integers(0, 255)),
    st.builds(frames.ConnectionMaxStreamId, u64),
    st.builds(StreamClose, small, st.integers(0, 255), texts),
    st.builds(StreamMoney, small, st.one_of(small, u64)),
    st.builds(StreamMaxMoney, small, st.one_of(small, u64), st.one_of(small, u64)),
    st.builds(frames.StreamMoneyBlocked, small, u64, u64),
    st.builds(frames.StreamData, small, u64, st.binary(max_size=8)),
    st.builds(StreamMaxData, small, u64),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    is_server=st.booleans(),
    packets=st.lists(
        st.tuples(
            st.lists(frame_strategy, max_size=6).map(tuple),
            st.one_of(small, u64),
            st.one_of(small, u64),
            st.booleans(),
            st.sampled_from(list(IlpPacketType)),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_random_packets_never_raise(
    is_server: bool, packets: list[tuple[tuple[Frame, ...], int, int, bool, IlpPacketType]]
) -> None:
    client, server = make_pair()
    conn = server if is_server else client
    stream_id = conn.open_stream()
    conn.set_receive_max(stream_id, 500)
    conn.set_send_max(stream_id, 300)
    for packet_frames, amount, prepare_amount, fulfillable, packet_type in packets:
        prepare = _prepare(
            packet_frames,
            amount=amount,
            prepare_amount=prepare_amount,
            fulfillable=fulfillable,
            packet_type=packet_type,
        )
        reply = conn.handle_prepare(prepare, T0)
        if isinstance(reply, Fulfill):
            assert KEYS.condition(prepare.data) == prepare.execution_condition
            answer = _reply_packet(reply)
            assert (answer.ilp_packet_type, answer.prepare_amount) == (IlpPacketType.FULFILL, amount)
        elif reply.code == "F99":
            answer = _reply_packet(reply)
            assert (answer.ilp_packet_type, answer.prepare_amount) == (IlpPacketType.REJECT, amount)
        else:
            assert reply.code == "F06"
            assert packet_type is not IlpPacketType.PREPARE
        out = conn.poll(T0)
        if out is not None:
            answer_frames = (*packet_frames[:2], frames.ConnectionMaxData(1))
            data = encrypt_packet(KEYS, StreamPacket(out.id, IlpPacketType.REJECT, amount, answer_frames))
            conn.handle_reply(out.id, Reject("F99", CONNECTION_ADDRESS, "", data), T0)
        conn.drain_events()
    view = conn.stream(stream_id)
    assert 0 <= view.total_sent <= 300
    assert view.in_flight >= 0
