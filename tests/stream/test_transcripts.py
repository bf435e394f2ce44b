"""Replays the two JS client <-> JS server pull transcripts packet by packet.

Every ILP packet must decode to its recorded fields and re-encode to the same bytes; every STREAM payload
must decrypt to its recorded plaintext, decode to its recorded frames, re-encode identically and (with the IV
it was sent under) re-encrypt identically; every fulfilled Prepare's condition must be
sha256(HMAC(fulfillmentKey, data)); every reply must echo its request's sequence, in the ILP type carrying
it.
"""

import base64

import pytest
from _pytest.mark import ParameterSet

from stream import ildcp, ilp, packet
from stream.crypto import IV_LENGTH, StreamKeys
from stream.ilp import Fulfill, IlpPacketType, Reject
from tests.stream.vectors import (
    Json,
    load,
    prepare_from_json,
    reject_from_json,
    stream_packet_from_json,
    unhex,
)

TRANSCRIPTS = {
    "pull3000": "transcript_pull3000.json",
    "pull2500_max1000": "transcript_pull2500_maxpacket1000.json",
}


def _keys(transcript: str) -> StreamKeys:
    return StreamKeys(unhex(load(TRANSCRIPTS[transcript])["sharedSecret"]))


def _exchanges(*, ildcp_only: bool) -> list[ParameterSet]:
    params = []
    for short, file in TRANSCRIPTS.items():
        for index, exchange in enumerate(load(file)["exchanges"]):
            if (exchange.get("kind") == "ildcp") != ildcp_only:
                continue
            label = (
                exchange.get("kind") or f"{exchange['request']['amount']}-{exchange['response']['ilpType']}"
            )
            params.append(pytest.param(short, exchange, id=f"{short}-{index:02d}-{exchange['from']}-{label}"))
    return params


STREAM_EXCHANGES = _exchanges(ildcp_only=False)
ILDCP_EXCHANGES = _exchanges(ildcp_only=True)


def _check_stream_payload(keys: StreamKeys, recorded: Json) -> packet.StreamPacket:
    encrypted = unhex(recorded["streamEncryptedHex"])
    plaintext = keys.decrypt(encrypted)
    assert plaintext.hex() == recorded["streamPlaintextHex"]
    decoded = packet.decode(plaintext)
    assert decoded == stream_packet_from_json(recorded["stream"])
    assert packet.encode(decoded) == plaintext
    assert packet.encrypt_packet(keys, decoded, iv=encrypted[:IV_LENGTH]) == encrypted
    return decoded


@pytest.mark.parametrize(("transcript", "exchange"), STREAM_EXCHANGES)
def test_prepare_replays(transcript: str, exchange: Json) -> None:
    request = exchange["request"]
    prepare = ilp.decode_prepare(unhex(request["hex"]))
    assert prepare == prepare_from_json(request)
    assert ilp.encode(prepare).hex() == request["hex"]
    stream_packet = _check_stream_payload(_keys(transcript), request)
    assert stream_packet.ilp_packet_type is IlpPacketType.PREPARE
    assert stream_packet.prepare_amount <= prepare.amount


@pytest.mark.parametrize(("transcript", "exchange"), STREAM_EXCHANGES)
def test_reply_replays(transcript: str, exchange: Json) -> None:
    keys = _keys(transcript)
    request, response = exchange["request"], exchange["response"]
    reply = ilp.decode_reply(unhex(response["hex"]))
    assert ilp.encode(reply).hex() == response["hex"]
    request_data = unhex(request["streamEncryptedHex"])
    if response["ilpType"] == "fulfill":
        assert reply == Fulfill(unhex(response["fulfillment"]), unhex(response["streamEncryptedHex"]))
        assert keys.fulfillment(request_data).hex() == response["fulfillment"]
        assert keys.condition(request_data).hex() == request["executionCondition"]
        expected_type = IlpPacketType.FULFILL
    else:
        assert reply == reject_from_json(response)
        expected_type = IlpPacketType.REJECT
    if isinstance(reply, Reject) and reply.code == ilp.ErrorCode.F08_AMOUNT_TOO_LARGE:
        details = ilp.decode_max_packet_details(reply.data)
        assert details.received == int(request["amount"])
        assert details.maximum < details.received
    if "streamEncryptedHex" in response:
        answer = _check_stream_payload(keys, response)
        assert answer.ilp_packet_type is expected_type
        assert answer.sequence == int(request["stream"]["sequence"])
        assert answer.prepare_amount == int(request["amount"])


@pytest.mark.parametrize(("transcript", "exchange"), ILDCP_EXCHANGES)
def test_ildcp_exchange_replays(transcript: str, exchange: Json) -> None:
    recorded = load(TRANSCRIPTS[transcript])
    request = ilp.decode_prepare(unhex(exchange["request"]["hex"]))
    assert ildcp.is_ildcp_request(request)
    assert ilp.encode(ildcp.request_prepare(request.expires_at)).hex() == exchange["request"]["hex"]
    response = ildcp.decode_response(unhex(exchange["response"]["hex"]))
    own_address = recorded["clientAddress"] if exchange["from"] == "puller" else recorded["serverAddress"]
    assert response == ildcp.IldcpResponse(own_address, 9, "XRP")
    assert ilp.encode(ildcp.response_fulfill(response)).hex() == exchange["response"]["hex"]


@pytest.mark.parametrize("transcript", TRANSCRIPTS)
def test_transcript_totals(transcript: str) -> None:
    recorded = load(TRANSCRIPTS[transcript])
    assert base64.b64decode(recorded["spsp"]["shared_secret"]).hex() == recorded["sharedSecret"]
    assert recorded["spsp"]["destination_account"].startswith(recorded["serverAddress"] + ".")
    delivered = sum(
        int(exchange["request"]["amount"])
        for exchange in recorded["exchanges"]
        if exchange["from"] == "pullserver" and exchange["response"]["ilpType"] == "fulfill"
    )
    assert delivered == int(recorded["totalReceived"]) == int(recorded["pullAmount"])
