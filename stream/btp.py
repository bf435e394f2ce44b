"""BTP 2.0 (RFC 0023, byte-compatible with btp-packet 2.2.1 and ilp-plugin-btp 1.5.0).

One websocket binary message is one packet: `UInt8 type · UInt32 requestId · VarOctetString(contents)`.
ILP packets travel as the `ilp` protocol-data entry of a Message (request) and of the Response with the same
request id. The first client frame authenticates with the entries `auth`, `auth_username`, `auth_token`.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import TypeAlias

from stream.errors import (
    EncodeError,
    InvalidFieldError,
    InvalidTimestampError,
    TruncatedError,
    UnknownPacketTypeError,
)
from stream.ilp import format_timestamp, parse_timestamp
from stream.oer import BytesLike, Reader, Writer, decode_utf8

ILP_PROTOCOL = "ilp"
AUTH_PROTOCOL = "auth"
AUTH_USERNAME_PROTOCOL = "auth_username"
AUTH_TOKEN_PROTOCOL = "auth_token"  # noqa: S105 (a protocol name, not a secret)
ERROR_CODE_LENGTH = 3
# Smallest protocol-data entry: empty name, content type, empty data.
_MIN_ENTRY_SIZE = 3


class BtpPacketType(IntEnum):
    RESPONSE = 1
    ERROR = 2
    MESSAGE = 6
    TRANSFER = 7


class ContentType(IntEnum):
    OCTET_STREAM = 0
    TEXT_PLAIN_UTF8 = 1
    APPLICATION_JSON = 2


@dataclass(frozen=True, slots=True)
class ProtocolDataEntry:
    name: str
    content_type: int
    data: bytes


ProtocolData: TypeAlias = tuple[ProtocolDataEntry, ...]


@dataclass(frozen=True, slots=True)
class Message:
    request_id: int
    protocol_data: ProtocolData = ()


@dataclass(frozen=True, slots=True)
class Response:
    request_id: int
    protocol_data: ProtocolData = ()


@dataclass(frozen=True, slots=True)
class Error:
    request_id: int
    code: str
    name: str
    triggered_at: datetime
    data: str = ""
    protocol_data: ProtocolData = ()


@dataclass(frozen=True, slots=True)
class Transfer:
    request_id: int
    amount: int
    protocol_data: ProtocolData = ()


BtpPacket: TypeAlias = Message | Response | Error | Transfer


@dataclass(frozen=True, slots=True)
class AuthCredentials:
    username: str
    token: str

    def __repr__(self) -> str:
        return f"AuthCredentials(username={self.username!r}, token=<redacted>)"


# --- timestamps -------------------------------------------------------------------------------------------

# The ILP timestamp's digits with a dot before the milliseconds and a Z (GeneralizedTime, as btp-packet).
_BTP_TIMESTAMP = re.compile(rb"(\d{14})\.(\d{3})Z")


def format_btp_timestamp(moment: datetime) -> str:
    """BTP Error `triggeredAt`: `YYYYMMDDHHmmss.fffZ` in UTC, always three millisecond digits."""
    digits = format_timestamp(moment)
    return f"{digits[:14]}.{digits[14:]}Z"


def parse_btp_timestamp(raw: BytesLike) -> datetime:
    match = _BTP_TIMESTAMP.fullmatch(raw)
    if match is None:
        raise InvalidTimestampError(f"invalid BTP timestamp: {bytes(raw[:32])!r}")
    return parse_timestamp(match[1] + match[2])


# --- encode / decode --------------------------------------------------------------------------------------


def encode(packet: BtpPacket) -> bytes:
    contents = Writer()
    if isinstance(packet, Message | Response):
        packet_type = BtpPacketType.MESSAGE if isinstance(packet, Message) else BtpPacketType.RESPONSE
    elif isinstance(packet, Error):
        packet_type = BtpPacketType.ERROR
        _write_error_fields(contents, packet)
    else:
        packet_type = BtpPacketType.TRANSFER
        contents.write_uint64(packet.amount)
    _write_protocol_data(contents, packet.protocol_data)
    envelope = Writer()
    envelope.write_uint8(packet_type)
    envelope.write_uint32(packet.request_id)
    envelope.write_nested(contents)
    return envelope.to_bytes()


def decode(data: BytesLike) -> BtpPacket:
    reader = Reader(data)
    packet_type = reader.read_uint8()
    read_contents = _CONTENT_READERS.get(packet_type)
    if read_contents is None:
        raise UnknownPacketTypeError(f"unknown BTP packet type {packet_type}")
    request_id = reader.read_uint32()
    contents = Reader(reader.read_var_octet_string_view())
    reader.expect_end()
    packet = read_contents(request_id, contents)
    contents.expect_end()
    return packet


def _write_error_fields(writer: Writer, error: Error) -> None:
    if len(error.code) != ERROR_CODE_LENGTH or not error.code.isascii():
        raise EncodeError(f"BTP error code must be 3 ASCII characters: {error.code!r}")
    writer.write(error.code.encode("ascii"))
    writer.write_var_utf8(error.name)
    writer.write_var_ascii(format_btp_timestamp(error.triggered_at))
    writer.write_var_utf8(error.data)


def _write_protocol_data(writer: Writer, entries: ProtocolData) -> None:
    writer.write_var_uint(len(entries))
    for entry in entries:
        writer.write_var_ascii(entry.name)
        writer.write_uint8(entry.content_type)
        writer.write_var_octet_string(entry.data)


def _read_protocol_data(reader: Reader) -> ProtocolData:
    count = reader.read_var_uint()
    if count * _MIN_ENTRY_SIZE > reader.remaining:
        raise TruncatedError(f"{count} protocol-data entries cannot fit in {reader.remaining} bytes")
    return tuple(
        ProtocolDataEntry(
            name=reader.read_var_ascii(),
            content_type=reader.read_uint8(),
            data=reader.read_var_octet_string(),
        )
        for _ in range(count)
    )


def _read_message(request_id: int, reader: Reader) -> Message:
    return Message(request_id, _read_protocol_data(reader))


def _read_response(request_id: int, reader: Reader) -> Response:
    return Response(request_id, _read_protocol_data(reader))


def _read_error(request_id: int, reader: Reader) -> Error:
    return Error(
        request_id=request_id,
        code=reader.read_ascii(ERROR_CODE_LENGTH),
        name=reader.read_var_utf8(lenient=True),
        triggered_at=parse_btp_timestamp(reader.read_var_octet_string_view()),
        data=reader.read_var_utf8(lenient=True),
        protocol_data=_read_protocol_data(reader),
    )


def _read_transfer(request_id: int, reader: Reader) -> Transfer:
    return Transfer(request_id, amount=reader.read_uint64(), protocol_data=_read_protocol_data(reader))


_CONTENT_READERS: dict[int, Callable[[int, Reader], BtpPacket]] = {
    BtpPacketType.MESSAGE: _read_message,
    BtpPacketType.RESPONSE: _read_response,
    BtpPacketType.ERROR: _read_error,
    BtpPacketType.TRANSFER: _read_transfer,
}


# --- ILP inside BTP ---------------------------------------------------------------------------------------


def find_entry(protocol_data: Iterable[ProtocolDataEntry], name: str) -> ProtocolDataEntry | None:
    """The first entry called `name`, if any."""
    return next((entry for entry in protocol_data if entry.name == name), None)


def ilp_entry(ilp_packet: bytes) -> ProtocolDataEntry:
    return ProtocolDataEntry(ILP_PROTOCOL, ContentType.OCTET_STREAM, ilp_packet)


def ilp_message(request_id: int, ilp_packet: bytes) -> Message:
    """A Message carrying a serialized ILP Prepare."""
    return Message(request_id, (ilp_entry(ilp_packet),))


def ilp_response(request_id: int, ilp_packet: bytes) -> Response:
    """The Response (same request id as the Message) carrying the serialized ILP Fulfill or Reject."""
    return Response(request_id, (ilp_entry(ilp_packet),))


def ilp_payload(packet: BtpPacket) -> bytes | None:
    """The serialized ILP packet of the `ilp` entry, or None when the packet has none."""
    entry = find_entry(packet.protocol_data, ILP_PROTOCOL)
    return None if entry is None else entry.data


# --- authentication ---------------------------------------------------------------------------------------


def auth_message(request_id: int, username: str, token: str) -> Message:
    """The first frame of a client: `auth` (empty), `auth_username` (may be empty), `auth_token`."""
    return Message(
        request_id,
        (
            ProtocolDataEntry(AUTH_PROTOCOL, ContentType.OCTET_STREAM, b""),
            ProtocolDataEntry(AUTH_USERNAME_PROTOCOL, ContentType.TEXT_PLAIN_UTF8, username.encode("utf-8")),
            ProtocolDataEntry(AUTH_TOKEN_PROTOCOL, ContentType.TEXT_PLAIN_UTF8, token.encode("utf-8")),
        ),
    )


def is_auth_message(packet: BtpPacket) -> bool:
    return (
        isinstance(packet, Message)
        and len(packet.protocol_data) > 0
        and packet.protocol_data[0].name == AUTH_PROTOCOL
    )


def parse_auth(message: Message) -> AuthCredentials:
    """Credentials of an auth Message; the username defaults to "" and the token is required.

    Both are decoded as strict UTF-8, so different byte strings can never map to the same credentials.
    """
    if not is_auth_message(message):
        raise InvalidFieldError("not a BTP auth message: the first protocol-data entry must be 'auth'")
    token = find_entry(message.protocol_data, AUTH_TOKEN_PROTOCOL)
    if token is None:
        raise InvalidFieldError("BTP auth message without auth_token")
    username = find_entry(message.protocol_data, AUTH_USERNAME_PROTOCOL)
    return AuthCredentials(
        username="" if username is None else decode_utf8(username.data),
        token=decode_utf8(token.data),
    )


def auth_accepted(request_id: int) -> Response:
    """The answer to a successful auth: a Response with the same request id and no entries."""
    return Response(request_id)
