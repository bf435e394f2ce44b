"""ILPv4 packets (RFC 0027, byte-compatible with ilp-packet 3.1.3): Prepare, Fulfill, Reject.

Every packet is `UInt8 type · VarOctetString(contents)`. Decoding is strict: addresses are validated as
ilp-packet does (Prepare destination; Reject triggeredBy unless empty), data is limited to 32767 bytes, and no
byte may follow the contents or the envelope, so a packet has exactly one encoding. Only the Reject message is
read leniently (invalid UTF-8 becomes U+FFFD), because it is informational and JS peers read it that way.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum, StrEnum
from typing import TypeAlias

from stream.address import decode_address, is_valid_address
from stream.errors import (
    EncodeError,
    InvalidFieldError,
    InvalidTimestampError,
    UnexpectedPacketTypeError,
    UnknownPacketTypeError,
)
from stream.oer import BytesLike, Reader, Writer

MAX_DATA_LENGTH = 32767
CONDITION_LENGTH = 32
FULFILLMENT_LENGTH = 32
TIMESTAMP_LENGTH = 17
ERROR_CODE_LENGTH = 3


class IlpPacketType(IntEnum):
    PREPARE = 12
    FULFILL = 13
    REJECT = 14


class ErrorCode(StrEnum):
    """The ILPv4 error codes; the first letter is the class (Final, Temporary, Relative)."""

    F00_BAD_REQUEST = "F00"
    F01_INVALID_PACKET = "F01"
    F02_UNREACHABLE = "F02"
    F03_INVALID_AMOUNT = "F03"
    F04_INSUFFICIENT_DESTINATION_AMOUNT = "F04"
    F05_WRONG_CONDITION = "F05"
    F06_UNEXPECTED_PAYMENT = "F06"
    F07_CANNOT_RECEIVE = "F07"
    F08_AMOUNT_TOO_LARGE = "F08"
    F99_APPLICATION_ERROR = "F99"
    T00_INTERNAL_ERROR = "T00"
    T01_PEER_UNREACHABLE = "T01"
    T02_PEER_BUSY = "T02"
    T03_CONNECTOR_BUSY = "T03"
    T04_INSUFFICIENT_LIQUIDITY = "T04"
    T05_RATE_LIMITED = "T05"
    T99_APPLICATION_ERROR = "T99"
    R00_TRANSFER_TIMED_OUT = "R00"
    R01_INSUFFICIENT_SOURCE_AMOUNT = "R01"
    R02_INSUFFICIENT_TIMEOUT = "R02"
    R99_APPLICATION_ERROR = "R99"

    @property
    def description(self) -> str:
        """The RFC's name of the code, e.g. "Amount Too Large"."""
        return self.name[4:].replace("_", " ").title()


def is_final(code: str) -> bool:
    return code.startswith("F")


def is_temporary(code: str) -> bool:
    return code.startswith("T")


def is_relative(code: str) -> bool:
    return code.startswith("R")


@dataclass(frozen=True, slots=True)
class Prepare:
    amount: int
    expires_at: datetime
    execution_condition: bytes
    destination: str
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Fulfill:
    fulfillment: bytes
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class Reject:
    code: str
    triggered_by: str
    message: str = ""
    data: bytes = b""


IlpPacket: TypeAlias = Prepare | Fulfill | Reject
IlpReply: TypeAlias = Fulfill | Reject


@dataclass(frozen=True, slots=True)
class MaxPacketDetails:
    """The data of an F08 Amount Too Large reject, as ilp-connector writes it."""

    received: int
    maximum: int


def as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; naive datetimes are refused because their instant is ambiguous."""
    if moment.utcoffset() is None:
        raise EncodeError(f"datetime must be timezone-aware: {moment!r}")
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """ILP timestamp `YYYYMMDDHHmmSSfff` in UTC; sub-millisecond precision is truncated."""
    t = as_utc(moment)
    return "%04d%02d%02d%02d%02d%02d%03d" % (  # noqa: UP031 (twice as fast as an f-string here, per packet)
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.microsecond // 1000,
    )


def parse_timestamp(text: str | BytesLike) -> datetime:
    """Parse the 17-digit ILP timestamp into a UTC datetime (millisecond precision)."""
    if isinstance(text, str):
        if not text.isascii():
            raise InvalidTimestampError(f"invalid ILP timestamp: {text[:32]!r}")
        raw = text.encode("ascii")
    else:
        raw = bytes(text)
    # bytes.isdigit() only accepts ASCII digits, and excludes the signs and blanks that int() would take.
    if len(raw) != TIMESTAMP_LENGTH or not raw.isdigit():
        raise InvalidTimestampError(f"invalid ILP timestamp: {raw[:32]!r}")
    try:
        return datetime(
            int(raw[0:4]),
            int(raw[4:6]),
            int(raw[6:8]),
            int(raw[8:10]),
            int(raw[10:12]),
            int(raw[12:14]),
            int(raw[14:17]) * 1000,
            tzinfo=UTC,
        )
    except ValueError:
        raise InvalidTimestampError(f"ILP timestamp names no valid date: {raw!r}") from None


def encode_max_packet_details(details: MaxPacketDetails) -> bytes:
    writer = Writer()
    writer.write_uint64(details.received)
    writer.write_uint64(details.maximum)
    return writer.to_bytes()


def decode_max_packet_details(data: BytesLike) -> MaxPacketDetails:
    """Read the F08 data; like ilp-protocol-stream, bytes after the two amounts are ignored."""
    reader = Reader(data)
    return MaxPacketDetails(received=reader.read_uint64(), maximum=reader.read_uint64())


def encode(packet: IlpPacket) -> bytes:
    contents = Writer()
    if isinstance(packet, Prepare):
        packet_type = IlpPacketType.PREPARE
        _write_prepare(contents, packet)
    elif isinstance(packet, Fulfill):
        packet_type = IlpPacketType.FULFILL
        _write_fixed(contents, packet.fulfillment, FULFILLMENT_LENGTH, "fulfillment")
        _write_data(contents, packet.data)
    else:
        packet_type = IlpPacketType.REJECT
        _write_reject(contents, packet)
    envelope = Writer()
    envelope.write_uint8(packet_type)
    envelope.write_nested(contents)
    return envelope.to_bytes()


def decode(data: BytesLike) -> IlpPacket:
    reader = Reader(data)
    packet_type = reader.read_uint8()
    read_contents = _CONTENT_READERS.get(packet_type)
    if read_contents is None:
        raise UnknownPacketTypeError(f"unknown ILP packet type {packet_type}")
    contents = Reader(reader.read_var_octet_string_view())
    reader.expect_end()
    packet = read_contents(contents)
    contents.expect_end()
    return packet


def decode_prepare(data: BytesLike) -> Prepare:
    packet = decode(data)
    if not isinstance(packet, Prepare):
        raise UnexpectedPacketTypeError(f"expected an ILP Prepare, got {type(packet).__name__}")
    return packet


def decode_reply(data: BytesLike) -> IlpReply:
    packet = decode(data)
    if isinstance(packet, Prepare):
        raise UnexpectedPacketTypeError("expected an ILP Fulfill or Reject, got Prepare")
    return packet


def _write_fixed(writer: Writer, value: bytes, length: int, what: str) -> None:
    if len(value) != length:
        raise EncodeError(f"{what} must be {length} bytes, got {len(value)}")
    writer.write(value)


def _write_data(writer: Writer, data: bytes) -> None:
    if len(data) > MAX_DATA_LENGTH:
        raise EncodeError(f"ILP data is limited to {MAX_DATA_LENGTH} bytes, got {len(data)}")
    writer.write_var_octet_string(data)


def _write_address(writer: Writer, address: str, what: str) -> None:
    if not is_valid_address(address):
        raise EncodeError(f"{what} is not a valid ILP address: {address[:64]!r}")
    writer.write_var_ascii(address)


def _write_prepare(writer: Writer, prepare: Prepare) -> None:
    writer.write_uint64(prepare.amount)
    writer.write(format_timestamp(prepare.expires_at).encode("ascii"))
    _write_fixed(writer, prepare.execution_condition, CONDITION_LENGTH, "execution_condition")
    _write_address(writer, prepare.destination, "destination")
    _write_data(writer, prepare.data)


def _write_reject(writer: Writer, reject: Reject) -> None:
    if len(reject.code) != ERROR_CODE_LENGTH or not reject.code.isascii():
        raise EncodeError(f"ILP error code must be 3 ASCII characters: {reject.code!r}")
    writer.write(reject.code.encode("ascii"))
    if reject.triggered_by:
        _write_address(writer, reject.triggered_by, "triggered_by")
    else:
        writer.write_length_prefix(0)
    writer.write_var_utf8(reject.message)
    _write_data(writer, reject.data)


def _read_data(reader: Reader) -> bytes:
    length = reader.read_length_prefix()
    if length > MAX_DATA_LENGTH:
        raise InvalidFieldError(f"ILP data is limited to {MAX_DATA_LENGTH} bytes, got {length}")
    return reader.read_bytes(length)


def _read_prepare(reader: Reader) -> Prepare:
    return Prepare(
        amount=reader.read_uint64(),
        expires_at=parse_timestamp(reader.read_view(TIMESTAMP_LENGTH)),
        execution_condition=reader.read_bytes(CONDITION_LENGTH),
        destination=decode_address(reader.read_var_octet_string_view()),
        data=_read_data(reader),
    )


def _read_fulfill(reader: Reader) -> Fulfill:
    return Fulfill(fulfillment=reader.read_bytes(FULFILLMENT_LENGTH), data=_read_data(reader))


def _read_reject(reader: Reader) -> Reject:
    code = reader.read_ascii(ERROR_CODE_LENGTH)
    triggered_by_raw = reader.read_var_octet_string_view()
    return Reject(
        code=code,
        triggered_by=decode_address(triggered_by_raw) if triggered_by_raw else "",
        message=reader.read_var_utf8(lenient=True),
        data=_read_data(reader),
    )


_CONTENT_READERS: dict[int, Callable[[Reader], IlpPacket]] = {
    IlpPacketType.PREPARE: _read_prepare,
    IlpPacketType.FULFILL: _read_fulfill,
    IlpPacketType.REJECT: _read_reject,
}
