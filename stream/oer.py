"""Octet Encoding Rules as used by Interledger (RFC 0030, matching oer-utils 5.1.2).

`Reader` walks a buffer without copying it (slices are memoryviews until a field is materialised) and
raises only `stream.errors.DecodeError` subclasses. `Writer` collects parts and joins them once, so nested
length-prefixed structures (ILP packet contents inside the envelope, frames inside a STREAM packet) cost no
extra copy.
Encoders always produce the minimal forms; the reader rejects non-canonical length determinants but, like
oer-utils, accepts VarUInts with leading zero bytes.
"""

import struct
from typing import TypeAlias

from stream.errors import (
    EncodeError,
    InvalidTextError,
    NonCanonicalLengthError,
    TrailingDataError,
    TruncatedError,
    VarUIntError,
)

BytesLike: TypeAlias = bytes | bytearray | memoryview

U64_MAX = 2**64 - 1
MAX_VAR_UINT_LENGTH = 8

_UINT16 = struct.Struct(">H")
_UINT32 = struct.Struct(">I")
_UINT64 = struct.Struct(">Q")

_SINGLE_BYTES = tuple(bytes((value,)) for value in range(256))
_ONE_BYTE_VAR_UINTS = tuple(bytes((1, value)) for value in range(256))


def encode_length_prefix(length: int) -> bytes:
    """Shortest length determinant: one byte up to 127, else 0x80|k followed by k big-endian bytes."""
    if 0 <= length < 0x80:
        return _SINGLE_BYTES[length]
    if length < 0:
        raise EncodeError(f"length must not be negative: {length}")
    size = (length.bit_length() + 7) // 8
    return bytes((0x80 | size,)) + length.to_bytes(size, "big")


def encode_var_uint(value: int) -> bytes:
    """A VarUInt: length determinant and the minimal big-endian bytes of `value` (at least one byte)."""
    if 0 <= value < 0x100:
        return _ONE_BYTE_VAR_UINTS[value]
    if not 0 <= value <= U64_MAX:
        raise EncodeError(f"VarUInt out of range 0..2**64-1: {value}")
    size = (value.bit_length() + 7) // 8
    return _SINGLE_BYTES[size] + value.to_bytes(size, "big")


def encode_var_octet_string(data: BytesLike) -> bytes:
    return encode_length_prefix(len(data)) + data


def decode_ascii(raw: BytesLike) -> str:
    try:
        return str(raw, "ascii")
    except UnicodeDecodeError as error:
        raise InvalidTextError(f"not ASCII: {error.reason} at byte {error.start}") from None


def decode_utf8(raw: BytesLike, *, lenient: bool = False) -> str:
    """Strict UTF-8, or with `lenient` invalid sequences replaced by U+FFFD as the JS peers do.

    Lenient decoding is meant for human-readable messages only; identifiers and credentials stay strict so
    that two different byte strings can never decode to the same text.
    """
    if lenient:
        return str(raw, "utf-8", "replace")
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError as error:
        raise InvalidTextError(f"not UTF-8: {error.reason} at byte {error.start}") from None


class Reader:
    """Sequential reader over bytes; every method either returns a value or raises a `DecodeError`."""

    __slots__ = ("_end", "_pos", "_view")

    def __init__(self, data: BytesLike) -> None:
        view = memoryview(data)
        self._view = view if view.format == "B" else view.cast("B")
        self._pos = 0
        self._end = len(self._view)

    @property
    def position(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return self._end - self._pos

    def at_end(self) -> bool:
        return self._pos == self._end

    def expect_end(self) -> None:
        if self._pos != self._end:
            raise TrailingDataError(f"{self._end - self._pos} unexpected trailing bytes")

    def _advance(self, count: int) -> int:
        """Consume `count` bytes and return where they start."""
        start = self._pos
        end = start + count
        if end > self._end:
            raise TruncatedError(f"tried to read {count} bytes, but only {self._end - start} bytes available")
        self._pos = end
        return start

    def read_uint8(self) -> int:
        pos = self._pos
        if pos >= self._end:
            raise TruncatedError("tried to read 1 byte, but no bytes available")
        self._pos = pos + 1
        return self._view[pos]

    def read_uint16(self) -> int:
        return int(_UINT16.unpack_from(self._view, self._advance(2))[0])

    def read_uint32(self) -> int:
        return int(_UINT32.unpack_from(self._view, self._advance(4))[0])

    def read_uint64(self) -> int:
        return int(_UINT64.unpack_from(self._view, self._advance(8))[0])

    def read_view(self, count: int) -> memoryview:
        """The next `count` bytes without copying them (valid while the underlying buffer is)."""
        start = self._advance(count)
        return self._view[start : start + count]

    def read_bytes(self, count: int) -> bytes:
        start = self._advance(count)
        return self._view[start : start + count].tobytes()

    def read_ascii(self, count: int) -> str:
        return decode_ascii(self.read_view(count))

    def read_length_prefix(self) -> int:
        first = self.read_uint8()
        if first < 0x80:
            return first
        size = first & 0x7F
        start = self._advance(size)
        if size == 0 or self._view[start] == 0:
            raise NonCanonicalLengthError(f"length prefix with {size} length bytes is not canonical")
        length = int.from_bytes(self._view[start : start + size], "big")
        if length < 0x80:
            raise NonCanonicalLengthError(f"length prefix is not canonical: {length} encoded in {size} bytes")
        return length

    def read_var_octet_string_view(self) -> memoryview:
        return self.read_view(self.read_length_prefix())

    def read_var_octet_string(self) -> bytes:
        return self.read_bytes(self.read_length_prefix())

    def skip_var_octet_string(self) -> None:
        self._advance(self.read_length_prefix())

    def read_var_ascii(self) -> str:
        return decode_ascii(self.read_var_octet_string_view())

    def read_var_utf8(self, *, lenient: bool = False) -> str:
        return decode_utf8(self.read_var_octet_string_view(), lenient=lenient)

    def read_var_uint(self) -> int:
        """A VarUInt of 1 to 8 bytes; leading zero bytes are accepted."""
        return self._read_var_uint(saturating=False)

    def read_var_uint_saturating(self) -> int:
        """Like `read_var_uint`, but values longer than 8 bytes read as 2**64-1 (receiveMax, sendMax)."""
        return self._read_var_uint(saturating=True)

    def _read_var_uint(self, *, saturating: bool) -> int:
        # Fast path, taken by every valid VarUInt of up to 8 bytes: VarUInts are read several times per
        # STREAM frame, and going through read_length_prefix/_advance costs more than the decoding itself.
        view = self._view
        pos = self._pos
        if pos < self._end:
            length = view[pos]
            end = pos + 1 + length
            if 0 < length <= MAX_VAR_UINT_LENGTH and end <= self._end:
                self._pos = end
                return view[end - 1] if length == 1 else int.from_bytes(view[pos + 1 : end], "big")
        length = self.read_length_prefix()
        if length == 0:
            raise VarUIntError("VarUInt of length 0 is invalid")
        if length <= MAX_VAR_UINT_LENGTH:
            start = self._advance(length)
            return int.from_bytes(view[start : start + length], "big")
        if not saturating:
            raise VarUIntError(f"VarUInt of length {length} is too large")
        self._advance(length)
        return U64_MAX


class Writer:
    """Accumulates encoded parts; `to_bytes` joins them with a single copy."""

    __slots__ = ("_length", "_parts")

    def __init__(self) -> None:
        self._parts: list[BytesLike] = []
        self._length = 0

    def __len__(self) -> int:
        return self._length

    def write(self, data: BytesLike) -> None:
        self._parts.append(data)
        self._length += len(data)

    def write_uint8(self, value: int) -> None:
        if not 0 <= value < 0x100:
            raise EncodeError(f"UInt8 out of range: {value}")
        self._parts.append(_SINGLE_BYTES[value])
        self._length += 1

    def write_uint16(self, value: int) -> None:
        self.write(_pack(_UINT16, value))

    def write_uint32(self, value: int) -> None:
        self.write(_pack(_UINT32, value))

    def write_uint64(self, value: int) -> None:
        self.write(_pack(_UINT64, value))

    def write_length_prefix(self, length: int) -> None:
        self.write(encode_length_prefix(length))

    def write_var_octet_string(self, data: BytesLike) -> None:
        self.write(encode_length_prefix(len(data)))
        self.write(data)

    def write_var_ascii(self, text: str) -> None:
        try:
            self.write_var_octet_string(text.encode("ascii"))
        except UnicodeEncodeError:
            raise EncodeError(f"not ASCII: {text!r}") from None

    def write_var_utf8(self, text: str) -> None:
        try:
            self.write_var_octet_string(text.encode("utf-8"))
        except UnicodeEncodeError:
            raise EncodeError(f"not encodable as UTF-8: {text!r}") from None

    def write_var_uint(self, value: int) -> None:
        self.write(encode_var_uint(value))

    def write_nested(self, inner: "Writer") -> None:
        """Append everything `inner` holds as one VarOctetString, without copying its parts."""
        self.write(encode_length_prefix(inner._length))
        self._parts.extend(inner._parts)
        self._length += inner._length

    def to_bytes(self) -> bytes:
        return b"".join(self._parts)


def _pack(layout: struct.Struct, value: int) -> bytes:
    try:
        return layout.pack(value)
    except struct.error:
        raise EncodeError(f"{value!r} does not fit format {layout.format}") from None
