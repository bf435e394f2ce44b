from datetime import UTC, datetime

import pytest

from stream import btp
from stream.btp import AuthCredentials, ContentType, Message, ProtocolDataEntry, Response, Transfer
from stream.errors import (
    EncodeError,
    InvalidFieldError,
    InvalidTextError,
    InvalidTimestampError,
    TrailingDataError,
    TruncatedError,
    UnknownPacketTypeError,
)
from tests.stream.vectors import Json, btp_packet_from_json, cases, load, unhex

_UPSTREAM = [
    pytest.param(vector, id=name) for name, vector in load("btp.json")["btpPacketUpstreamTestBuffers"].items()
]

# --- vectors: btp.json -------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", cases("btp.json", "vectors"))
def test_packet_encodes_like_js(vector: Json) -> None:
    assert btp.encode(btp_packet_from_json(vector["packet"])).hex() == vector["hex"]


@pytest.mark.parametrize("vector", cases("btp.json", "vectors"))
def test_packet_decodes_like_js(vector: Json) -> None:
    assert btp.decode(unhex(vector["hex"])) == btp_packet_from_json(vector["packet"])


@pytest.mark.parametrize("vector", _UPSTREAM)
def test_upstream_buffer_encodes_like_js(vector: Json) -> None:
    assert btp.encode(btp_packet_from_json(vector["decoded"])).hex() == vector["hex"]


@pytest.mark.parametrize("vector", _UPSTREAM)
def test_upstream_buffer_decodes_like_js(vector: Json) -> None:
    assert btp.decode(unhex(vector["hex"])) == btp_packet_from_json(vector["decoded"])


def test_auth_message_is_built_like_js() -> None:
    vector = next(v for v in load("btp.json")["vectors"] if v["name"] == "auth_message")
    message = btp.auth_message(1, "alice", "secret")
    assert btp.encode(message).hex() == vector["hex"]
    decoded = btp.decode(unhex(vector["hex"]))
    assert isinstance(decoded, Message)
    assert btp.parse_auth(decoded) == AuthCredentials("alice", "secret")


def test_auth_accepted_is_built_like_js() -> None:
    vector = next(v for v in load("btp.json")["vectors"] if v["name"] == "auth_response")
    assert btp.encode(btp.auth_accepted(1)).hex() == vector["hex"]


@pytest.mark.parametrize("name", ["ilp_message_ildcp_request", "ilp_response_ildcp_fulfill"])
def test_ilp_wrapping_is_built_like_js(name: str) -> None:
    vector = next(v for v in load("btp.json")["vectors"] if v["name"] == name)
    ilp_packet = unhex(vector["packet"]["data"]["protocolData"][0]["data"]["hex"])
    wrap = btp.ilp_message if vector["packet"]["type"] == btp.BtpPacketType.MESSAGE else btp.ilp_response
    packet = wrap(vector["packet"]["requestId"], ilp_packet)
    assert btp.encode(packet).hex() == vector["hex"]
    assert btp.ilp_payload(btp.decode(unhex(vector["hex"]))) == ilp_packet


# --- behaviour beyond the vectors --------------------------------------------------------------------------


def test_auth_without_username_and_with_extra_entries() -> None:
    message = Message(
        7,
        (
            ProtocolDataEntry("auth", ContentType.OCTET_STREAM, b""),
            ProtocolDataEntry("auth_token", ContentType.TEXT_PLAIN_UTF8, b"s3cr3t"),
            ProtocolDataEntry("other", ContentType.APPLICATION_JSON, b"{}"),
        ),
    )
    assert btp.parse_auth(message) == AuthCredentials("", "s3cr3t")
    assert "s3cr3t" not in repr(btp.parse_auth(message))


@pytest.mark.parametrize(
    "protocol_data",
    [
        (),
        (ProtocolDataEntry("auth_token", 1, b"t"), ProtocolDataEntry("auth", 0, b"")),
        (ProtocolDataEntry("auth", 0, b""), ProtocolDataEntry("auth_username", 1, b"u")),
    ],
)
def test_malformed_auth_is_refused(protocol_data: btp.ProtocolData) -> None:
    message = Message(1, protocol_data)
    with pytest.raises(InvalidFieldError):
        btp.parse_auth(message)


def test_auth_credentials_are_strict_utf8() -> None:
    message = Message(1, (ProtocolDataEntry("auth", 0, b""), ProtocolDataEntry("auth_token", 1, b"\xff")))
    with pytest.raises(InvalidTextError):
        btp.parse_auth(message)


def test_ilp_payload_absent() -> None:
    assert btp.ilp_payload(Response(1)) is None
    assert btp.ilp_payload(Transfer(1, 5, (ProtocolDataEntry("foo", 0, b"x"),))) is None


def test_timestamps() -> None:
    moment = datetime(2017, 8, 28, 18, 32, 0, 123456, tzinfo=UTC)
    assert btp.format_btp_timestamp(moment) == "20170828183200.123Z"
    assert btp.parse_btp_timestamp(b"20170828183200.123Z") == moment.replace(microsecond=123000)
    for bad in [b"20170828183200Z", b"20170828183200.12Z", b"20170828183200.123", b"20171328183200.123Z"]:
        with pytest.raises(InvalidTimestampError):
            btp.parse_btp_timestamp(bad)


def test_envelope_errors() -> None:
    packet = btp.encode(btp.auth_accepted(1))
    with pytest.raises(TrailingDataError):
        btp.decode(packet + b"\x00")
    with pytest.raises(TruncatedError):
        btp.decode(packet[:-1])
    for packet_type in (0, 3, 4, 5, 8):
        with pytest.raises(UnknownPacketTypeError):
            btp.decode(bytes((packet_type,)) + packet[1:])


def test_entry_count_larger_than_the_data_is_truncation() -> None:
    with pytest.raises(TruncatedError):
        btp.decode(unhex("0100000001" + "03" + "0105" + "00"))


def test_encode_refuses_bad_fields() -> None:
    with pytest.raises(EncodeError):
        btp.encode(Message(2**32))
    with pytest.raises(EncodeError):
        btp.encode(btp.Error(1, "F0", "x", datetime(2020, 1, 1, tzinfo=UTC)))
    with pytest.raises(EncodeError):
        btp.encode(Message(1, (ProtocolDataEntry("é", 0, b""),)))
    with pytest.raises(EncodeError):
        btp.encode(Message(1, (ProtocolDataEntry("x", 256, b""),)))
