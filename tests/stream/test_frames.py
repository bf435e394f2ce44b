import base64
import dataclasses

import pytest

from stream import frames, packet
from stream.errors import InvalidTextError, TrailingDataError, TruncatedError, VarUIntError
from stream.frames import (
    FRAME_CLASSES,
    ConnectionClose,
    ConnectionNewAddress,
    StreamErrorCode,
    StreamMaxMoney,
    StreamMoney,
    StreamMoneyBlocked,
    StreamReceipt,
)
from stream.oer import U64_MAX, Reader, Writer
from tests.stream.vectors import Json, cases, load, stream_packet_from_json, unhex

RFC = "stream_frames_rfc_fixtures.json"
_JS_CHECK = {check["name"]: check for check in load(RFC)["jsCheck"]}

# --- vectors: stream_frames_rfc_fixtures.json (unencrypted STREAM packets) ---------------------------------


@pytest.mark.parametrize("fixture", cases(RFC, "fixtures"))
def test_rfc_fixture_decodes(fixture: Json) -> None:
    buffer = base64.b64decode(fixture["buffer"])
    assert buffer.hex() == _JS_CHECK[fixture["name"]]["hex"]
    assert _JS_CHECK[fixture["name"]]["decodeOk"]
    assert packet.decode(buffer) == stream_packet_from_json(fixture["packet"])


@pytest.mark.parametrize("fixture", cases(RFC, "fixtures", where=lambda f: not f.get("decode_only")))
def test_rfc_fixture_encodes(fixture: Json) -> None:
    assert _JS_CHECK[fixture["name"]]["reencodeIdentical"]
    encoded = packet.encode(stream_packet_from_json(fixture["packet"]))
    assert base64.b64encode(encoded).decode() == fixture["buffer"]


@pytest.mark.parametrize("fixture", cases(RFC, "fixtures", where=lambda f: bool(f.get("decode_only"))))
def test_rfc_decode_only_fixture_saturates(fixture: Json) -> None:
    (frame,) = packet.decode(base64.b64decode(fixture["buffer"])).frames
    assert isinstance(frame, StreamMaxMoney | StreamMoneyBlocked)
    limit = frame.receive_max if isinstance(frame, StreamMaxMoney) else frame.send_max
    assert limit == U64_MAX
    # Re-encoding gives the minimal 8-byte form, which is why only decoding is compared.
    assert packet.decode(packet.encode(packet.decode(base64.b64decode(fixture["buffer"])))).frames == (frame,)


def test_receipt_vector_travels_in_a_receipt_frame() -> None:
    vector = load("stream_receipt.json")
    receipt = unhex(vector["receiptHex"])
    assert len(receipt) == 58
    assert receipt[1:17].hex() == vector["nonce"]
    assert receipt[17] == vector["streamId"]
    assert int.from_bytes(receipt[18:26], "big") == int(vector["totalReceived"])
    frame = StreamReceipt(vector["streamId"], receipt)
    assert frames.decode_frame(frames.encode_frame(frame)) == frame


# --- behaviour beyond the vectors --------------------------------------------------------------------------


def test_every_frame_class_has_a_layout_for_each_field() -> None:
    types = [cls.TYPE for cls in FRAME_CLASSES]
    assert len(set(types)) == len(types) == len(frames.FrameType)
    for cls in FRAME_CLASSES:
        assert len(cls.LAYOUT) == len(dataclasses.fields(cls)), cls.__name__


def test_unknown_frames_are_skipped() -> None:
    writer = Writer()
    writer.write_var_uint(3)
    frames.write_frame(writer, StreamMoney(1, 10))
    writer.write_uint8(0x7F)
    writer.write_var_octet_string(b"future frame")
    frames.write_frame(writer, ConnectionClose(StreamErrorCode.NO_ERROR))
    assert frames.read_frames(Reader(writer.to_bytes())) == (StreamMoney(1, 10), ConnectionClose(1, ""))
    assert frames.decode_frame(b"\x7f\x01\x00") is None


def test_extra_bytes_inside_a_frame_are_ignored() -> None:
    assert frames.decode_frame(b"\x11\x05\x01\x01\x01\x02\xff") == StreamMoney(1, 2)
    with pytest.raises(TrailingDataError):
        frames.decode_frame(frames.encode_frame(StreamMoney(1, 2)) + b"\x00")


def test_frame_count_must_fit_the_data() -> None:
    with pytest.raises(TruncatedError):
        frames.read_frames(Reader(b"\x08\xff\xff\xff\xff\xff\xff\xff\xff"))
    with pytest.raises(TruncatedError):
        frames.read_frames(Reader(b"\x01\x02\x11\x00"))


def test_non_saturating_fields_reject_nine_byte_values() -> None:
    nine = b"\x09" + bytes(9)
    with pytest.raises(VarUIntError):
        frames.decode_frame(b"\x11" + bytes((2 + len(nine),)) + b"\x01\x01" + nine)
    with pytest.raises(VarUIntError):
        frames.decode_frame(b"\x12" + bytes((1 + len(nine) + 2,)) + nine + b"\x01\x00\x01\x00")


def test_messages_are_lenient_but_addresses_strict() -> None:
    assert frames.decode_frame(b"\x01\x03\x09\x01\xff") == ConnectionClose(9, "\ufffd")
    assert frames.decode_frame(b"\x02\x04\x03g.a") == ConnectionNewAddress("g.a")
    with pytest.raises(InvalidTextError):
        frames.decode_frame(b"\x02\x02\x01\xff")
