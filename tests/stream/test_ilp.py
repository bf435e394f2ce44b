from datetime import UTC, datetime, timedelta, timezone

import pytest

from stream import ilp
from stream.address import decode_address, is_valid_address, validate_address
from stream.crypto import sha256
from stream.errors import (
    EncodeError,
    InvalidAddressError,
    InvalidFieldError,
    InvalidTextError,
    InvalidTimestampError,
    TrailingDataError,
    TruncatedError,
    UnexpectedPacketTypeError,
    UnknownPacketTypeError,
)
from stream.ilp import ErrorCode, Fulfill, MaxPacketDetails, Prepare, Reject
from stream.oer import encode_var_octet_string
from tests.stream.vectors import Json, cases, iso, prepare_from_json, reject_from_json, unhex

EXPIRY = datetime(2030, 1, 1, tzinfo=UTC)
CONDITION = bytes(range(32))

# --- vectors: ilp_packets.json ----------------------------------------------------------------------------


@pytest.mark.parametrize("vector", cases("ilp_packets.json", "timestamps", id_key="iso"))
def test_timestamp_formats_like_js(vector: Json) -> None:
    assert ilp.format_timestamp(iso(vector["iso"])) == vector["ilp"]


@pytest.mark.parametrize("vector", cases("ilp_packets.json", "timestamps", id_key="iso"))
def test_timestamp_parses_like_js(vector: Json) -> None:
    parsed = ilp.parse_timestamp(vector["ilp"])
    assert parsed == iso(vector["iso"])
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("vector", cases("ilp_packets.json", "prepares"))
def test_prepare_encodes_like_js(vector: Json) -> None:
    assert ilp.encode(prepare_from_json(vector)).hex() == vector["hex"]


@pytest.mark.parametrize("vector", cases("ilp_packets.json", "prepares"))
def test_prepare_decodes_like_js(vector: Json) -> None:
    assert ilp.decode(unhex(vector["hex"])) == prepare_from_json(vector)


@pytest.mark.parametrize("vector", cases("ilp_packets.json", "fulfills"))
def test_fulfill_encodes_like_js(vector: Json) -> None:
    fulfill = Fulfill(unhex(vector["fulfillment"]), unhex(vector["data"]))
    assert ilp.encode(fulfill).hex() == vector["hex"]


@pytest.mark.parametrize("vector", cases("ilp_packets.json", "fulfills"))
def test_fulfill_decodes_like_js(vector: Json) -> None:
    decoded = ilp.decode(unhex(vector["hex"]))
    assert decoded == Fulfill(unhex(vector["fulfillment"]), unhex(vector["data"]))
    assert sha256(decoded.fulfillment).hex() == vector["condition"]


@pytest.mark.parametrize("vector", cases("ilp_packets.json", "rejects"))
def test_reject_encodes_like_js(vector: Json) -> None:
    assert ilp.encode(reject_from_json(vector)).hex() == vector["hex"]


@pytest.mark.parametrize("vector", cases("ilp_packets.json", "rejects"))
def test_reject_decodes_like_js(vector: Json) -> None:
    assert ilp.decode(unhex(vector["hex"])) == reject_from_json(vector)


@pytest.mark.parametrize("vector", cases("ilp_packets.json", "rejects", where=lambda v: "dataDecoded" in v))
def test_f08_data_round_trips_like_js(vector: Json) -> None:
    details = MaxPacketDetails(
        received=int(vector["dataDecoded"]["receivedAmount"]),
        maximum=int(vector["dataDecoded"]["maximumAmount"]),
    )
    assert ilp.decode_max_packet_details(unhex(vector["data"])) == details
    assert ilp.encode_max_packet_details(details).hex() == vector["data"]


# --- addresses ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "g.a",
        "private.moneyd.local.alice",
        "test1.x",
        "test.x",
        "peer.config",
        "example.a_b~c-d.E9",
        "local." + "a" * 1017,
    ],
)
def test_valid_addresses(address: str) -> None:
    assert is_valid_address(address)
    assert validate_address(address) == address
    assert decode_address(address.encode()) == address


@pytest.mark.parametrize(
    "address",
    [
        "",
        "g",
        "g.",
        "g..a",
        "x.a",
        "test4.a",
        "g.a b",
        "g.a+b",
        "g.a/b",
        "g.a=",
        "g.é",
        "g.a\n",
        "G.a",
        "local." + "a" * 1018,
    ],
)
def test_invalid_addresses(address: str) -> None:
    assert not is_valid_address(address)
    with pytest.raises(InvalidAddressError):
        validate_address(address)
    with pytest.raises(InvalidAddressError):
        decode_address(address.encode())


# --- behaviour beyond the vectors --------------------------------------------------------------------------


def test_decode_rejects_invalid_destination() -> None:
    valid = ilp.encode(Prepare(1, EXPIRY, CONDITION, "g.ab"))
    invalid = valid.replace(b"g.ab", b"g.a+")
    with pytest.raises(InvalidAddressError):
        ilp.decode(invalid)


def test_decode_rejects_invalid_triggered_by_but_accepts_empty() -> None:
    valid = ilp.encode(Reject("F02", "g.ab", "m"))
    with pytest.raises(InvalidAddressError):
        ilp.decode(valid.replace(b"g.ab", b"x.ab"))
    assert ilp.decode(ilp.encode(Reject("R00", ""))) == Reject("R00", "")


def test_encode_refuses_invalid_fields() -> None:
    with pytest.raises(EncodeError):
        ilp.encode(Prepare(1, EXPIRY, CONDITION, "nope"))
    with pytest.raises(EncodeError):
        ilp.encode(Prepare(2**64, EXPIRY, CONDITION, "g.a"))
    with pytest.raises(EncodeError):
        ilp.encode(Prepare(1, EXPIRY, CONDITION[:31], "g.a"))
    with pytest.raises(EncodeError):
        ilp.encode(Prepare(1, EXPIRY.replace(tzinfo=None), CONDITION, "g.a"))
    with pytest.raises(EncodeError):
        ilp.encode(Fulfill(bytes(33)))
    with pytest.raises(EncodeError):
        ilp.encode(Reject("F0", "g.a"))
    with pytest.raises(EncodeError):
        ilp.encode(Reject("F99", "bad"))


def test_data_is_limited_to_32767_bytes() -> None:
    largest = Prepare(1, EXPIRY, CONDITION, "g.a", bytes(ilp.MAX_DATA_LENGTH))
    assert ilp.decode(ilp.encode(largest)) == largest
    with pytest.raises(EncodeError):
        ilp.encode(Fulfill(bytes(32), bytes(ilp.MAX_DATA_LENGTH + 1)))
    contents = bytes(32) + encode_var_octet_string(bytes(ilp.MAX_DATA_LENGTH + 1))
    oversized = bytes((ilp.IlpPacketType.FULFILL,)) + encode_var_octet_string(contents)
    with pytest.raises(InvalidFieldError):
        ilp.decode(oversized)


def test_envelope_must_be_exact() -> None:
    packet = ilp.encode(Fulfill(bytes(32)))
    with pytest.raises(TrailingDataError):
        ilp.decode(packet + b"\x00")
    with pytest.raises(TruncatedError):
        ilp.decode(packet[:-1])
    with pytest.raises(TruncatedError):
        ilp.decode(b"")
    with pytest.raises(UnknownPacketTypeError):
        ilp.decode(b"\x0b" + packet[1:])
    # Contents longer than their fields: the envelope length covers a trailing byte.
    with pytest.raises(TrailingDataError):
        ilp.decode(b"\x0d\x22" + packet[2:] + b"\x00")


def test_decode_prepare_and_reply_check_the_type() -> None:
    prepare = ilp.encode(Prepare(1, EXPIRY, CONDITION, "g.a"))
    fulfill = ilp.encode(Fulfill(bytes(32)))
    assert isinstance(ilp.decode_prepare(memoryview(prepare)), Prepare)
    assert isinstance(ilp.decode_reply(fulfill), Fulfill)
    with pytest.raises(UnexpectedPacketTypeError):
        ilp.decode_prepare(fulfill)
    with pytest.raises(UnexpectedPacketTypeError):
        ilp.decode_reply(prepare)


def test_reject_code_must_be_ascii_and_message_is_read_leniently() -> None:
    packet = bytearray(ilp.encode(Reject("F99", "g.a", "ab")))
    message_start = packet.index(b"ab")
    packet[message_start + 1] = 0xFF
    assert ilp.decode(bytes(packet)) == Reject("F99", "g.a", "a\ufffd")
    packet[2] = 0xC6
    with pytest.raises(InvalidTextError):
        ilp.decode(bytes(packet))


@pytest.mark.parametrize(
    "text",
    [
        "2017122401143220",
        "201712240114322000",
        "2017122401143220x",
        "+0171224011432200",
        "20171324011432200",
        "\N{FULLWIDTH DIGIT TWO}" * 17,
    ],
)
def test_malformed_timestamps_are_rejected(text: str) -> None:
    with pytest.raises(InvalidTimestampError):
        ilp.parse_timestamp(text)


def test_timestamps_convert_to_utc_and_truncate_to_milliseconds() -> None:
    moment = datetime(2020, 1, 1, 1, 0, 0, 123999, tzinfo=timezone(timedelta(hours=1)))
    assert ilp.format_timestamp(moment) == "20200101000000123"
    assert ilp.format_timestamp(datetime(999, 1, 2, tzinfo=UTC)) == "09990102000000000"


def test_f08_data_needs_two_amounts() -> None:
    with pytest.raises(TruncatedError):
        ilp.decode_max_packet_details(bytes(15))
    assert ilp.decode_max_packet_details(bytes(16) + b"x") == MaxPacketDetails(0, 0)


def test_error_codes() -> None:
    assert ErrorCode("F08") is ErrorCode.F08_AMOUNT_TOO_LARGE
    assert ErrorCode.F08_AMOUNT_TOO_LARGE.description == "Amount Too Large"
    assert ErrorCode.T05_RATE_LIMITED.description == "Rate Limited"
    assert len(ErrorCode) == 21
    assert all(len(code) == 3 for code in ErrorCode)
    assert ilp.is_final("F99") and not ilp.is_final("T04")
    assert ilp.is_temporary(ErrorCode.T04_INSUFFICIENT_LIQUIDITY) and not ilp.is_temporary("R00")
    assert ilp.is_relative("R02") and not ilp.is_relative("F02")
