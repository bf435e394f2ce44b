"""STREAM frames (RFC 0029 §5.3, as ilp-protocol-stream 2.7.1).

A frame is `UInt8 type · VarOctetString(contents)`. Reading follows the JS library: unknown frame types are
skipped (their contents are length-delimited), bytes after the known fields inside a frame's contents are
ignored (room for extensions), and StreamMaxMoney.receive_max / StreamMoneyBlocked.send_max saturate to
2**64-1 when longer than 8 bytes. Writing always produces the minimal encoding. Messages are read as lenient
UTF-8; ConnectionNewAddress is not validated here (the connection decides what to do with a bad address).
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Self, TypeAlias

from stream.errors import TruncatedError
from stream.oer import BytesLike, Reader, Writer

# Smallest frame: a type byte and an empty length-prefixed contents.
_MIN_FRAME_SIZE = 2


class FrameType(IntEnum):
    CONNECTION_CLOSE = 0x01
    CONNECTION_NEW_ADDRESS = 0x02
    CONNECTION_MAX_DATA = 0x03
    CONNECTION_DATA_BLOCKED = 0x04
    CONNECTION_MAX_STREAM_ID = 0x05
    CONNECTION_STREAM_ID_BLOCKED = 0x06
    CONNECTION_ASSET_DETAILS = 0x07
    STREAM_CLOSE = 0x10
    STREAM_MONEY = 0x11
    STREAM_MAX_MONEY = 0x12
    STREAM_MONEY_BLOCKED = 0x13
    STREAM_DATA = 0x14
    STREAM_MAX_DATA = 0x15
    STREAM_DATA_BLOCKED = 0x16
    STREAM_RECEIPT = 0x17


class StreamErrorCode(IntEnum):
    """Error codes of ConnectionClose and StreamClose. On the wire any UInt8 may appear."""

    NO_ERROR = 1
    INTERNAL_ERROR = 2
    ENDPOINT_BUSY = 3
    FLOW_CONTROL_ERROR = 4
    STREAM_ID_ERROR = 5
    STREAM_STATE_ERROR = 6
    FRAME_FORMAT_ERROR = 7
    PROTOCOL_VIOLATION = 8
    APPLICATION_ERROR = 9


@dataclass(frozen=True, slots=True)
class _FieldCodec:
    read: Callable[[Reader], Any]
    write: Callable[[Writer, Any], None]


def _read_message(reader: Reader) -> str:
    return reader.read_var_utf8(lenient=True)


_UINT8 = _FieldCodec(Reader.read_uint8, Writer.write_uint8)
_VAR_UINT = _FieldCodec(Reader.read_var_uint, Writer.write_var_uint)
_SATURATING_VAR_UINT = _FieldCodec(Reader.read_var_uint_saturating, Writer.write_var_uint)
_OCTETS = _FieldCodec(Reader.read_var_octet_string, Writer.write_var_octet_string)
_TEXT = _FieldCodec(Reader.read_var_utf8, Writer.write_var_utf8)
_MESSAGE = _FieldCodec(_read_message, Writer.write_var_utf8)


class _FrameCodec:
    """Frame contents are the fields in declaration order, each with the codec at the same place in LAYOUT."""

    __slots__ = ()
    TYPE: ClassVar[FrameType]
    LAYOUT: ClassVar[tuple[_FieldCodec, ...]]
    __match_args__: ClassVar[tuple[str, ...]]

    def write_contents(self, writer: Writer) -> None:
        for codec, name in zip(self.LAYOUT, self.__match_args__, strict=True):
            codec.write(writer, getattr(self, name))

    @classmethod
    def read_contents(cls, reader: Reader) -> Self:
        return cls(*[codec.read(reader) for codec in cls.LAYOUT])


@dataclass(frozen=True, slots=True)
class ConnectionClose(_FrameCodec):
    TYPE = FrameType.CONNECTION_CLOSE
    LAYOUT = (_UINT8, _MESSAGE)
    error_code: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class ConnectionNewAddress(_FrameCodec):
    TYPE = FrameType.CONNECTION_NEW_ADDRESS
    LAYOUT = (_TEXT,)
    source_account: str


@dataclass(frozen=True, slots=True)
class ConnectionMaxData(_FrameCodec):
    TYPE = FrameType.CONNECTION_MAX_DATA
    LAYOUT = (_VAR_UINT,)
    max_offset: int


@dataclass(frozen=True, slots=True)
class ConnectionDataBlocked(_FrameCodec):
    TYPE = FrameType.CONNECTION_DATA_BLOCKED
    LAYOUT = (_VAR_UINT,)
    max_offset: int


@dataclass(frozen=True, slots=True)
class ConnectionMaxStreamId(_FrameCodec):
    TYPE = FrameType.CONNECTION_MAX_STREAM_ID
    LAYOUT = (_VAR_UINT,)
    max_stream_id: int


@dataclass(frozen=True, slots=True)
class ConnectionStreamIdBlocked(_FrameCodec):
    TYPE = FrameType.CONNECTION_STREAM_ID_BLOCKED
    LAYOUT = (_VAR_UINT,)
    max_stream_id: int


@dataclass(frozen=True, slots=True)
class ConnectionAssetDetails(_FrameCodec):
    TYPE = FrameType.CONNECTION_ASSET_DETAILS
    LAYOUT = (_TEXT, _UINT8)
    source_asset_code: str
    source_asset_scale: int


@dataclass(frozen=True, slots=True)
class StreamClose(_FrameCodec):
    TYPE = FrameType.STREAM_CLOSE
    LAYOUT = (_VAR_UINT, _UINT8, _MESSAGE)
    stream_id: int
    error_code: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class StreamMoney(_FrameCodec):
    TYPE = FrameType.STREAM_MONEY
    LAYOUT = (_VAR_UINT, _VAR_UINT)
    stream_id: int
    shares: int


@dataclass(frozen=True, slots=True)
class StreamMaxMoney(_FrameCodec):
    """The receiver's limit; an unlimited `receive_max` is sent as 2**64-1."""

    TYPE = FrameType.STREAM_MAX_MONEY
    LAYOUT = (_VAR_UINT, _SATURATING_VAR_UINT, _VAR_UINT)
    stream_id: int
    receive_max: int
    total_received: int


@dataclass(frozen=True, slots=True)
class StreamMoneyBlocked(_FrameCodec):
    TYPE = FrameType.STREAM_MONEY_BLOCKED
    LAYOUT = (_VAR_UINT, _SATURATING_VAR_UINT, _VAR_UINT)
    stream_id: int
    send_max: int
    total_sent: int


@dataclass(frozen=True, slots=True)
class StreamData(_FrameCodec):
    TYPE = FrameType.STREAM_DATA
    LAYOUT = (_VAR_UINT, _VAR_UINT, _OCTETS)
    stream_id: int
    offset: int
    data: bytes


@dataclass(frozen=True, slots=True)
class StreamMaxData(_FrameCodec):
    TYPE = FrameType.STREAM_MAX_DATA
    LAYOUT = (_VAR_UINT, _VAR_UINT)
    stream_id: int
    max_offset: int


@dataclass(frozen=True, slots=True)
class StreamDataBlocked(_FrameCodec):
    TYPE = FrameType.STREAM_DATA_BLOCKED
    LAYOUT = (_VAR_UINT, _VAR_UINT)
    stream_id: int
    max_offset: int


@dataclass(frozen=True, slots=True)
class StreamReceipt(_FrameCodec):
    """Deprecated RFC 0039 receipt (58 bytes when well-formed; carried opaquely here)."""

    TYPE = FrameType.STREAM_RECEIPT
    LAYOUT = (_VAR_UINT, _OCTETS)
    stream_id: int
    receipt: bytes


Frame: TypeAlias = (
    ConnectionClose
    | ConnectionNewAddress
    | ConnectionMaxData
    | ConnectionDataBlocked
    | ConnectionMaxStreamId
    | ConnectionStreamIdBlocked
    | ConnectionAssetDetails
    | StreamClose
    | StreamMoney
    | StreamMaxMoney
    | StreamMoneyBlocked
    | StreamData
    | StreamMaxData
    | StreamDataBlocked
    | StreamReceipt
)

FRAME_CLASSES: tuple[type[Frame], ...] = (
    ConnectionClose,
    ConnectionNewAddress,
    ConnectionMaxData,
    ConnectionDataBlocked,
    ConnectionMaxStreamId,
    ConnectionStreamIdBlocked,
    ConnectionAssetDetails,
    StreamClose,
    StreamMoney,
    StreamMaxMoney,
    StreamMoneyBlocked,
    StreamData,
    StreamMaxData,
    StreamDataBlocked,
    StreamReceipt,
)

_CONTENT_READERS: dict[int, Callable[[Reader], Frame]] = {
    cls.TYPE: cls.read_contents for cls in FRAME_CLASSES
}


def write_frame(writer: Writer, frame: Frame) -> None:
    contents = Writer()
    frame.write_contents(contents)
    writer.write_uint8(frame.TYPE)
    writer.write_nested(contents)


def write_frames(writer: Writer, frames: Iterable[Frame]) -> None:
    """The frame count (as a VarUInt) followed by the frames."""
    frames = tuple(frames)
    writer.write_var_uint(len(frames))
    for frame in frames:
        write_frame(writer, frame)


def read_frame(reader: Reader) -> Frame | None:
    """The next frame, or None when its type is unknown (the frame is skipped)."""
    frame_type = reader.read_uint8()
    contents = reader.read_var_octet_string_view()
    read_contents = _CONTENT_READERS.get(frame_type)
    return None if read_contents is None else read_contents(Reader(contents))


def read_frames(reader: Reader) -> tuple[Frame, ...]:
    """Exactly as many frames as the count announces; unknown ones are dropped from the result."""
    count = reader.read_var_uint()
    if count * _MIN_FRAME_SIZE > reader.remaining:
        raise TruncatedError(f"{count} frames cannot fit in {reader.remaining} bytes")
    frames = []
    for _ in range(count):
        frame = read_frame(reader)
        if frame is not None:
            frames.append(frame)
    return tuple(frames)


def encode_frame(frame: Frame) -> bytes:
    writer = Writer()
    write_frame(writer, frame)
    return writer.to_bytes()


def decode_frame(data: BytesLike) -> Frame | None:
    """One frame filling `data` exactly (None for an unknown type)."""
    reader = Reader(data)
    frame = read_frame(reader)
    reader.expect_end()
    return frame
