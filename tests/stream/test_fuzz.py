"""Fuzzing every decoder of untrusted bytes, and round-trip properties of every encoder.

Each decoder, given random bytes or a mutated / truncated valid encoding, must either return a value or raise
`DecodeError` (any other exception fails the test). Whatever it returns must survive encode -> decode
unchanged, so nothing a decoder accepts is beyond the encoder.
"""

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream import address, btp, frames, ildcp, ilp, packet
from stream.crypto import StreamKeys
from stream.errors import DecodeError
from stream.oer import U64_MAX, Reader, Writer, encode_length_prefix, encode_var_octet_string, encode_var_uint
from stream.packet import StreamPacket, decrypt_packet, encrypt_packet
from tests.stream.vectors import load, unhex

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = StreamKeys(unhex(load("stream_crypto.json")["sharedSecret"]))

# --- corpora of valid encodings, from the vectors ----------------------------------------------------------


def _transcript_hexes() -> Iterator[str]:
    for name in ("transcript_pull3000.json", "transcript_pull2500_maxpacket1000.json"):
        for exchange in load(name)["exchanges"]:
            yield exchange["request"]["hex"]
            yield exchange["response"]["hex"]


def _ilp_corpus() -> tuple[bytes, ...]:
    packets = load("ilp_packets.json")
    hexes = [v["hex"] for key in ("prepares", "fulfills", "rejects") for v in packets[key]]
    ildcp_vector = load("ildcp.json")
    hexes += [ildcp_vector["request"]["hex"], ildcp_vector["response"]["hex"]]
    hexes += [ildcp_vector["errorResponseExample"]["hex"]]
    return tuple(unhex(h) for h in hexes)


def _stream_plaintexts() -> tuple[bytes, ...]:
    rfc = [check["hex"] for check in load("stream_frames_rfc_fixtures.json")["jsCheck"]]
    crypto = [v["plaintextHex"] for v in load("stream_crypto.json")["packets"]]
    return tuple(unhex(h) for h in rfc + crypto)


ILP_CORPUS = _ilp_corpus()
ILP_TRANSCRIPT_CORPUS = tuple(unhex(h) for h in _transcript_hexes())
BTP_CORPUS = tuple(unhex(v["hex"]) for v in load("btp.json")["vectors"]) + tuple(
    unhex(v["hex"]) for v in load("btp.json")["btpPacketUpstreamTestBuffers"].values()
)
STREAM_CORPUS = _stream_plaintexts()
FRAME_CORPUS = tuple(
    frames.encode_frame(frame) for plaintext in STREAM_CORPUS for frame in packet.decode(plaintext).frames
)
ENCRYPTED_CORPUS = (
    *(unhex(v["encryptedHex"]) for v in load("stream_crypto.json")["packets"]),
    unhex(load("stream_crypto.json")["paddingExample"]["encryptedHex"]),
)
ILDCP_CORPUS = (unhex(load("ildcp.json")["response"]["hex"]),)
ILDCP_DATA_CORPUS = (unhex(load("ildcp.json")["response"]["dataHex"]),)
OER_CORPUS = tuple(unhex(v["hex"]) for v in load("oer.json")["varuint"]) + tuple(
    encode_length_prefix(v["length"]) + bytes(v["length"]) for v in load("oer.json")["lengthPrefix"]
)
TIMESTAMP_CORPUS = tuple(v["ilp"].encode() for v in load("ilp_packets.json")["timestamps"])
BTP_TIMESTAMP_CORPUS = (b"20300101000000.000Z", b"20170828183200.123Z")
F08_CORPUS = tuple(
    unhex(v["data"])
    for v in load("ilp_packets.json")["rejects"]
    if v["code"] == ilp.ErrorCode.F08_AMOUNT_TOO_LARGE
)
ADDRESS_CORPUS = (b"private.moneyd.local.alice", b"g.a", b"test3.x_~-y.z")


# --- decoders under test -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A decoder, valid inputs to mutate, and (where one exists) the encoder its results must survive."""

    decode: Callable[[bytes], Any]
    corpus: tuple[bytes, ...]
    encode: Callable[[Any], bytes] | None = None


def _read_whole(read: Callable[[Reader], Any], data: bytes) -> Any:
    reader = Reader(data)
    value = read(reader)
    reader.expect_end()
    return value


def _parse_auth(data: bytes) -> btp.AuthCredentials | None:
    message = btp.decode(data)
    return btp.parse_auth(message) if isinstance(message, btp.Message) else None


def _encode_frames(value: tuple[frames.Frame, ...]) -> bytes:
    writer = Writer()
    frames.write_frames(writer, value)
    return writer.to_bytes()


FRAME_LIST_CORPUS = tuple(_encode_frames(packet.decode(plaintext).frames) for plaintext in STREAM_CORPUS)


TARGETS: dict[str, Target] = {
    "oer.read_uint64": Target(partial(_read_whole, Reader.read_uint64), OER_CORPUS),
    "oer.read_length_prefix": Target(
        partial(_read_whole, Reader.read_length_prefix), OER_CORPUS, encode_length_prefix
    ),
    "oer.read_var_octet_string": Target(
        partial(_read_whole, Reader.read_var_octet_string), OER_CORPUS, encode_var_octet_string
    ),
    "oer.read_var_uint": Target(partial(_read_whole, Reader.read_var_uint), OER_CORPUS, encode_var_uint),
    "oer.read_var_uint_saturating": Target(
        partial(_read_whole, Reader.read_var_uint_saturating), OER_CORPUS, encode_var_uint
    ),
    "oer.read_var_utf8": Target(
        partial(_read_whole, Reader.read_var_utf8), OER_CORPUS, lambda s: encode_var_octet_string(s.encode())
    ),
    "oer.read_var_ascii": Target(
        partial(_read_whole, Reader.read_var_ascii), OER_CORPUS, lambda s: encode_var_octet_string(s.encode())
    ),
    "address.decode_address": Target(address.decode_address, ADDRESS_CORPUS, str.encode),
    "ilp.decode": Target(ilp.decode, ILP_CORPUS + ILP_TRANSCRIPT_CORPUS, ilp.encode),
    "ilp.parse_timestamp": Target(
        ilp.parse_timestamp, TIMESTAMP_CORPUS, lambda t: ilp.format_timestamp(t).encode()
    ),
    "ilp.decode_max_packet_details": Target(
        ilp.decode_max_packet_details, F08_CORPUS, ilp.encode_max_packet_details
    ),
    "ildcp.decode_response": Target(
        ildcp.decode_response, ILDCP_CORPUS, lambda r: ilp.encode(ildcp.response_fulfill(r))
    ),
    "ildcp.decode_response_data": Target(
        ildcp.decode_response_data, ILDCP_DATA_CORPUS, ildcp.encode_response_data
    ),
    "btp.decode": Target(btp.decode, BTP_CORPUS, btp.encode),
    "btp.parse_auth": Target(
        _parse_auth, BTP_CORPUS, lambda auth: btp.encode(btp.auth_message(1, auth.username, auth.token))
    ),
    "btp.parse_btp_timestamp": Target(
        btp.parse_btp_timestamp, BTP_TIMESTAMP_CORPUS, lambda t: btp.format_btp_timestamp(t).encode()
    ),
    "frames.decode_frame": Target(frames.decode_frame, FRAME_CORPUS, frames.encode_frame),
    "frames.read_frames": Target(partial(_read_whole, frames.read_frames), FRAME_LIST_CORPUS, _encode_frames),
    "packet.decode": Target(packet.decode, STREAM_CORPUS, packet.encode),
    "packet.decrypt_packet": Target(
        partial(decrypt_packet, KEYS), ENCRYPTED_CORPUS, partial(encrypt_packet, KEYS)
    ),
}


def decodes_or_rejects(target: Target, data: bytes) -> None:
    try:
        value = target.decode(data)
    except DecodeError:
        return
    if target.encode is not None and value is not None:
        assert target.decode(target.encode(value)) == value


@st.composite
def mutations(draw: st.DrawFn, corpus: tuple[bytes, ...]) -> bytes:
    """A valid encoding with one byte replaced, inserted or deleted, or cut short."""
    data = bytearray(draw(st.sampled_from(corpus)))
    operation = draw(st.sampled_from(("replace", "insert", "delete", "truncate")))
    if operation == "truncate" or not data:
        return bytes(data[: draw(st.integers(0, len(data)))])
    if operation == "insert":
        data.insert(draw(st.integers(0, len(data))), draw(st.integers(0, 255)))
        return bytes(data)
    index = draw(st.integers(0, len(data) - 1))
    if operation == "delete":
        del data[index]
    else:
        data[index] = draw(st.integers(0, 255))
    return bytes(data)


TARGET_IDS = list(TARGETS)


@pytest.mark.parametrize("name", TARGET_IDS)
@FUZZ
@given(data=st.binary(max_size=200))
def test_random_bytes_decode_or_raise_decode_error(name: str, data: bytes) -> None:
    decodes_or_rejects(TARGETS[name], data)


@pytest.mark.parametrize("name", TARGET_IDS)
@FUZZ
@given(draw=st.data())
def test_mutated_encodings_decode_or_raise_decode_error(name: str, draw: st.DataObject) -> None:
    target = TARGETS[name]
    decodes_or_rejects(target, draw.draw(mutations(target.corpus)))


def _systematic_mutations(data: bytes) -> Iterator[bytes]:
    for cut in range(len(data)):
        yield data[:cut]
    for index, byte in enumerate(data):
        for replacement in {byte ^ 0xFF, byte ^ 0x01, 0x00, 0x7F, 0x80}:
            yield data[:index] + bytes((replacement,)) + data[index + 1 :]


@pytest.mark.parametrize(
    ("name", "corpus"),
    [
        ("ilp.decode", ILP_CORPUS),
        ("btp.decode", BTP_CORPUS),
        ("packet.decode", STREAM_CORPUS),
        ("ildcp.decode_response", ILDCP_CORPUS),
    ],
)
def test_every_truncation_and_single_byte_change_of_the_vectors(name: str, corpus: tuple[bytes, ...]) -> None:
    target = TARGETS[name]
    for valid in corpus:
        for mutated in _systematic_mutations(valid):
            decodes_or_rejects(target, mutated)


TEXT_DECODERS: dict[str, Callable[[str], object]] = {
    "address.validate_address": address.validate_address,
    "ilp.parse_timestamp": ilp.parse_timestamp,
}


@pytest.mark.parametrize("name", list(TEXT_DECODERS))
@FUZZ
@given(text=st.one_of(st.text(max_size=120), st.text(max_size=80).map("private.moneyd.local.s.".__add__)))
def test_text_decoders_return_or_raise_decode_error(name: str, text: str) -> None:
    with contextlib.suppress(DecodeError):
        TEXT_DECODERS[name](text)


# --- round trips of generated valid values -----------------------------------------------------------------

u8 = st.integers(0, 255)
u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, U64_MAX)
blobs = st.binary(max_size=64)
texts = st.text(max_size=24)
ascii_texts = st.text(st.characters(max_codepoint=127), max_size=24)
_SEGMENT_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_~-"
addresses = st.builds(
    lambda scheme, segments: ".".join([scheme, *segments]),
    st.sampled_from(["g", "private", "example", "peer", "self", "test", "test1", "test2", "test3", "local"]),
    st.lists(st.text(_SEGMENT_ALPHABET, min_size=1, max_size=16), min_size=1, max_size=4),
)
moments = st.datetimes(
    min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))
codes = st.text(st.characters(max_codepoint=127), min_size=3, max_size=3)

ilp_packets = st.one_of(
    st.builds(ilp.Prepare, u64, moments, st.binary(min_size=32, max_size=32), addresses, blobs),
    st.builds(ilp.Fulfill, st.binary(min_size=32, max_size=32), blobs),
    st.builds(ilp.Reject, codes, st.one_of(st.just(""), addresses), texts, blobs),
)

protocol_data = st.lists(st.builds(btp.ProtocolDataEntry, ascii_texts, u8, blobs), max_size=4).map(tuple)
btp_packets = st.one_of(
    st.builds(btp.Message, u32, protocol_data),
    st.builds(btp.Response, u32, protocol_data),
    st.builds(btp.Error, u32, codes, texts, moments, texts, protocol_data),
    st.builds(btp.Transfer, u32, u64, protocol_data),
)

stream_frames = st.one_of(
    st.builds(frames.ConnectionClose, u8, texts),
    st.builds(frames.ConnectionNewAddress, texts),
    st.builds(frames.ConnectionMaxData, u64),
    st.builds(frames.ConnectionDataBlocked, u64),
    st.builds(frames.ConnectionMaxStreamId, u64),
    st.builds(frames.ConnectionStreamIdBlocked, u64),
    st.builds(frames.ConnectionAssetDetails, texts, u8),
    st.builds(frames.StreamClose, u64, u8, texts),
    st.builds(frames.StreamMoney, u64, u64),
    st.builds(frames.StreamMaxMoney, u64, u64, u64),
    st.builds(frames.StreamMoneyBlocked, u64, u64, u64),
    st.builds(frames.StreamData, u64, u64, blobs),
    st.builds(frames.StreamMaxData, u64, u64),
    st.builds(frames.StreamDataBlocked, u64, u64),
    st.builds(frames.StreamReceipt, u64, blobs),
)
stream_packets = st.builds(
    StreamPacket, u64, st.sampled_from(ilp.IlpPacketType), u64, st.lists(stream_frames, max_size=5).map(tuple)
)


@FUZZ
@given(value=ilp_packets)
def test_ilp_round_trip(value: ilp.IlpPacket) -> None:
    encoded = ilp.encode(value)
    assert ilp.decode(encoded) == value
    assert ilp.encode(ilp.decode(encoded)) == encoded


@FUZZ
@given(value=btp_packets)
def test_btp_round_trip(value: btp.BtpPacket) -> None:
    encoded = btp.encode(value)
    assert btp.decode(encoded) == value
    assert btp.encode(btp.decode(encoded)) == encoded


@FUZZ
@given(value=stream_packets, padding=st.integers(0, 40))
def test_stream_packet_round_trip(value: StreamPacket, padding: int) -> None:
    encoded = packet.encode(value)
    assert packet.decode(encoded) == value
    assert packet.decode(encoded + bytes(padding)) == value
    assert packet.encode(packet.decode(encoded)) == encoded
    pad_to = len(encoded) + 28 + padding
    encrypted = encrypt_packet(KEYS, value, pad_to=pad_to)
    assert len(encrypted) == pad_to
    assert decrypt_packet(KEYS, encrypted) == value


@FUZZ
@given(value=stream_frames)
def test_frame_round_trip(value: frames.Frame) -> None:
    encoded = frames.encode_frame(value)
    assert frames.decode_frame(encoded) == value


@FUZZ
@given(value=st.builds(ildcp.IldcpResponse, addresses, u8, texts))
def test_ildcp_round_trip(value: ildcp.IldcpResponse) -> None:
    assert ildcp.decode_response(ilp.encode(ildcp.response_fulfill(value))) == value
