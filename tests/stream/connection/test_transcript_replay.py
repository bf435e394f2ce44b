"""Both roles replayed against the JS client <-> JS server pull transcripts.

Server role: the puller's Prepares go into a server-role connection and every reply is checked structurally
against the JS server's (type, code, echoed sequence, prepareAmount, frames); where the JS server sent a
Prepare, ours must send the same one (amount, destination, expiry, sequence, prepareAmount, frames,
fulfillable or not), and gets the recorded answer re-targeted to it. Client role: the same, mirrored, with
the JS server's Prepares going into a client-role connection.

Deliberate differences from JS, checked as such:
- a JS peer repeats ConnectionMaxStreamId + ConnectionAssetDetails in replies as its concurrent handlers
  happen to queue them; ours answers each Prepare that carries ConnectionNewAddress with exactly one pair;
- the JS server sends its StreamClose in a Prepare after telling it in its reply to the puller's StreamClose;
  ours stops at the reply (the puller already knows);
- the JS 2.7.1 client burns a sequence number before ConnectionClose; ours does not.
"""

from datetime import UTC, datetime
from typing import Any

import pytest

from stream import ilp
from stream.connection import (
    AssetDetails,
    ConnectionClosed,
    ConnectionOptions,
    Event,
    ExchangeRateProbed,
    MoneyReceived,
    MoneySent,
    OutgoingPrepare,
    PacketKind,
    RemoteReceiveMax,
    StreamConnection,
)
from stream.crypto import StreamKeys
from stream.frames import ConnectionAssetDetails, ConnectionClose, ConnectionMaxStreamId, Frame, StreamClose
from stream.ilp import Fulfill, IlpPacketType, IlpReply, Reject
from stream.packet import StreamPacket, decrypt_packet, encrypt_packet
from tests.stream.vectors import Json, frame_from_json, load, prepare_from_json, unhex

TRANSCRIPTS = ["transcript_pull3000.json", "transcript_pull2500_maxpacket1000.json"]
NOW = datetime(2030, 1, 1, tzinfo=UTC)
XRP = AssetDetails("XRP", 9)
HANDSHAKE: set[Any] = {ConnectionMaxStreamId(20), ConnectionAssetDetails("XRP", 9)}
JS_LIKE = ConnectionOptions(probe_exchange_rate=True)


def _frames(stream_json: Json) -> list[Frame]:
    return [frame_from_json(frame) for frame in stream_json["frames"]]


def _reached_peer(exchange: Json) -> bool:
    """False for Prepares the connector answered itself (F08 above its max packet amount)."""
    response = exchange["response"]
    return response["ilpType"] == "fulfill" or "streamEncryptedHex" in response


def _check_reply(keys: StreamKeys, reply: IlpReply, exchange: Json) -> None:
    request, recorded = exchange["request"], exchange["response"]
    if recorded["ilpType"] == "fulfill":
        assert isinstance(reply, Fulfill)
        assert reply.fulfillment.hex() == recorded["fulfillment"]
        expected_type = IlpPacketType.FULFILL
    else:
        assert isinstance(reply, Reject)
        assert (reply.code, reply.triggered_by, reply.message) == (
            recorded["code"],
            recorded["triggeredBy"],
            recorded["message"],
        )
        expected_type = IlpPacketType.REJECT
    ours = decrypt_packet(keys, reply.data)
    theirs = recorded["stream"]
    assert ours.ilp_packet_type is expected_type
    assert ours.sequence == int(request["stream"]["sequence"])
    assert ours.prepare_amount == int(theirs["prepareAmount"]) == int(request["amount"])
    our_frames = list(dict.fromkeys(ours.frames))
    js_frames = list(dict.fromkeys(_frames(theirs)))
    assert [f for f in our_frames if f not in HANDSHAKE] == [f for f in js_frames if f not in HANDSHAKE]
    assert set(js_frames) & HANDSHAKE <= set(our_frames)
    if set(our_frames) & HANDSHAKE:
        assert any(frame["name"] == "ConnectionNewAddress" for frame in request["stream"]["frames"])
        assert sum(frame in HANDSHAKE for frame in ours.frames) == 2


def _check_prepare(
    keys: StreamKeys, out: OutgoingPrepare, exchange: Json, *, check_sequence: bool = True
) -> None:
    request = exchange["request"]
    prepare = out.prepare
    assert prepare.amount == int(request["amount"])
    assert prepare.destination == request["destination"]
    assert prepare.expires_at == datetime.fromisoformat(request["expiresAt"])
    ours = decrypt_packet(keys, prepare.data)
    theirs = request["stream"]
    assert ours.ilp_packet_type is IlpPacketType.PREPARE
    if check_sequence:
        assert ours.sequence == int(theirs["sequence"])
    assert ours.prepare_amount == int(theirs["prepareAmount"])
    assert list(ours.frames) == _frames(theirs)
    js_fulfillable = (
        keys.condition(unhex(request["streamEncryptedHex"])).hex() == request["executionCondition"]
    )
    assert (keys.condition(prepare.data) == prepare.execution_condition) is js_fulfillable
    assert (out.kind is PacketKind.STREAM) is js_fulfillable


def _retarget(keys: StreamKeys, exchange: Json, out: OutgoingPrepare) -> IlpReply:
    """The recorded answer, made to answer our Prepare: same STREAM reply under our sequence, and for a
    Fulfill the fulfillment of our data."""
    recorded = exchange["response"]
    if "streamEncryptedHex" not in recorded:
        return ilp.decode_reply(unhex(recorded["hex"]))
    packet = decrypt_packet(keys, unhex(recorded["streamEncryptedHex"]))
    data = encrypt_packet(
        keys, StreamPacket(out.id, packet.ilp_packet_type, packet.prepare_amount, packet.frames)
    )
    if recorded["ilpType"] == "fulfill":
        return Fulfill(keys.fulfillment(out.prepare.data), data)
    return Reject(recorded["code"], recorded["triggeredBy"], recorded["message"], data)


class _Outbox:
    """Our Prepares in the order the connection gives them; it is asked again only when all were used."""

    def __init__(self, conn: StreamConnection) -> None:
        self.conn = conn
        self.queue: list[OutgoingPrepare] = []

    def next(self) -> OutgoingPrepare:
        if not self.queue:
            while (out := self.conn.poll(NOW)) is not None:
                self.queue.append(out)
        assert self.queue, "the connection has nothing to send where the JS peer sent a Prepare"
        return self.queue.pop(0)


def _is_stream_close_only(stream_json: Json) -> bool:
    return [frame["name"] for frame in stream_json["frames"]] == ["StreamClose"]


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_server_role_replays_the_js_pull_server(name: str) -> None:
    recorded = load(name)
    keys = StreamKeys(unhex(recorded["sharedSecret"]))
    pull_amount = int(recorded["pullAmount"])
    server = StreamConnection(
        keys=keys,
        is_server=True,
        local_address=recorded["serverAddress"],
        asset=XRP,
        options=JS_LIKE,
        now=NOW,
    )
    outbox = _Outbox(server)
    events: list[Event] = []

    def react() -> None:
        for event in server.drain_events():
            events.append(event)
            if isinstance(event, RemoteReceiveMax) and server.stream(1).send_max == 0:
                assert event.receive_max == pull_amount
                server.set_send_max(1, pull_amount)
                server.close_stream_when_sent(1)

    for exchange in recorded["exchanges"]:
        if exchange.get("kind") == "ildcp":
            continue
        if exchange["from"] == "puller":
            if not _reached_peer(exchange):
                continue
            reply = server.handle_prepare(prepare_from_json(exchange["request"]), NOW)
            _check_reply(keys, reply, exchange)
        elif _is_stream_close_only(exchange["request"]["stream"]):
            view = server.stream(1)
            assert not view.is_open
            assert view.total_sent == pull_amount
        else:
            out = outbox.next()
            _check_prepare(keys, out, exchange)
            server.handle_reply(out.id, _retarget(keys, exchange, out), NOW)
        react()

    assert server.poll(NOW) is None
    assert server.is_closed
    sent = [event.amount for event in events if isinstance(event, MoneySent)]
    expected = [
        int(e["request"]["amount"])
        for e in recorded["exchanges"]
        if e["from"] == "pullserver" and e["response"]["ilpType"] == "fulfill" and int(e["request"]["amount"])
    ]
    assert sent == expected
    assert sum(sent) == pull_amount
    assert isinstance(events[-1], ConnectionClosed)
    assert events[-1].error_code == 1


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_client_role_replays_the_js_puller(name: str) -> None:
    recorded = load(name)
    keys = StreamKeys(unhex(recorded["sharedSecret"]))
    pull_amount = int(recorded["pullAmount"])
    client = StreamConnection(
        keys=keys,
        is_server=False,
        local_address=recorded["clientAddress"],
        remote_address=recorded["spsp"]["destination_account"],
        asset=XRP,
        options=JS_LIKE,
        now=NOW,
    )
    stream_id = client.open_stream()
    client.set_receive_max(stream_id, pull_amount)
    outbox = _Outbox(client)
    events: list[Event] = []

    for exchange in recorded["exchanges"]:
        if exchange.get("kind") == "ildcp":
            continue
        if exchange["from"] == "puller":
            out = outbox.next()
            closing = any(
                frame["name"] == "ConnectionClose" for frame in exchange["request"]["stream"]["frames"]
            )
            _check_prepare(keys, out, exchange, check_sequence=not closing)
            client.handle_reply(out.id, _retarget(keys, exchange, out), NOW)
        elif _reached_peer(exchange):
            reply = client.handle_prepare(prepare_from_json(exchange["request"]), NOW)
            _check_reply(keys, reply, exchange)
        for event in client.drain_events():
            events.append(event)
            if isinstance(event, MoneyReceived) and event.total_received >= pull_amount:
                client.close()

    assert client.poll(NOW) is None
    assert client.is_closed
    assert client.stream(stream_id).total_received == pull_amount
    probed = [event for event in events if isinstance(event, ExchangeRateProbed)]
    assert len(probed) == 1
    assert probed[0].rate == 1
    assert events[-1] == ConnectionClosed(1, "", by_remote=False)


@pytest.mark.parametrize("name", TRANSCRIPTS)
def test_server_role_without_probing_sends_the_same_money(name: str) -> None:
    """No probes: the rate is 1 because both sides are XRP/9; the F08 of a first oversized packet (data as the
    transcript's connector writes it) teaches the 1000 cap."""
    recorded = load(name)
    keys = StreamKeys(unhex(recorded["sharedSecret"]))
    pull_amount = int(recorded["pullAmount"])
    server = StreamConnection(
        keys=keys, is_server=True, local_address=recorded["serverAddress"], asset=XRP, now=NOW
    )
    opening = [e for e in recorded["exchanges"] if e["from"] == "puller" and e.get("kind") != "ildcp"]
    for exchange in opening[:6]:
        server.handle_prepare(prepare_from_json(exchange["request"]), NOW)
    server.set_send_max(1, pull_amount)
    f08 = [e["response"] for e in recorded["exchanges"] if e["response"].get("code") == "F08"]
    cap = ilp.decode_max_packet_details(unhex(f08[0]["dataHex"])).maximum if f08 else None
    amounts = []
    total = 0
    while (out := server.poll(NOW)) is not None:
        amount = out.prepare.amount
        if cap is not None and amount > cap:
            details = ilp.encode_max_packet_details(ilp.MaxPacketDetails(amount, cap))
            server.handle_reply(out.id, Reject("F08", f08[0]["triggeredBy"], f08[0]["message"], details), NOW)
            continue
        amounts.append(amount)
        packet = decrypt_packet(keys, out.prepare.data)
        assert packet.prepare_amount == amount * 99 // 100
        total += amount
        reply_packet = StreamPacket(out.id, IlpPacketType.FULFILL, amount, ())
        server.handle_reply(
            out.id, Fulfill(keys.fulfillment(out.prepare.data), encrypt_packet(keys, reply_packet)), NOW
        )
    expected = [3000] if cap is None else [1000, 1000, 500]
    assert amounts == expected
    assert total == pull_amount


def test_probe_replies_carry_the_handshake_once_per_new_address() -> None:
    recorded = load(TRANSCRIPTS[0])
    keys = StreamKeys(unhex(recorded["sharedSecret"]))
    server = StreamConnection(
        keys=keys, is_server=True, local_address=recorded["serverAddress"], asset=XRP, now=NOW
    )
    reply = server.handle_prepare(prepare_from_json(recorded["exchanges"][1]["request"]), NOW)
    frames = decrypt_packet(keys, reply.data).frames
    assert frames.count(ConnectionMaxStreamId(20)) == 1
    assert frames.count(ConnectionAssetDetails("XRP", 9)) == 1
    assert server.remote_address == recorded["clientAddress"]
    assert server.remote_asset == XRP


def test_connection_close_from_the_puller_closes_the_server() -> None:
    recorded = load(TRANSCRIPTS[0])
    keys = StreamKeys(unhex(recorded["sharedSecret"]))
    server = StreamConnection(
        keys=keys, is_server=True, local_address=recorded["serverAddress"], asset=XRP, now=NOW
    )
    closing = recorded["exchanges"][-1]["request"]
    assert any(frame["name"] == "ConnectionClose" for frame in closing["stream"]["frames"])
    server.handle_prepare(prepare_from_json(recorded["exchanges"][1]["request"]), NOW)
    reply = server.handle_prepare(prepare_from_json(closing), NOW)
    assert isinstance(reply, Reject)
    assert reply.code == "F99"
    assert server.is_closed
    assert server.drain_events()[-1] == ConnectionClosed(1, "", by_remote=True)
    again = server.handle_prepare(prepare_from_json(recorded["exchanges"][2]["request"]), NOW)
    assert isinstance(again, Reject)
    frames = decrypt_packet(keys, again.data).frames
    assert not any(isinstance(frame, ConnectionClose | StreamClose) for frame in frames)
