"""Typed errors of the Interledger codecs.

Every decoder of untrusted bytes raises a subclass of `DecodeError` and nothing else, so a caller can turn any
malformed input into a protocol-level rejection with one ``except DecodeError``. Encoders given values that
cannot be represented on the wire raise `EncodeError`.
"""


class DecodeError(ValueError):
    """Bytes that do not form a valid packet, frame or field."""


class TruncatedError(DecodeError):
    """The input ended before the structure it announces."""


class TrailingDataError(DecodeError):
    """Bytes left over after a structure that must fill its container exactly."""


class NonCanonicalLengthError(DecodeError):
    """An OER length determinant not in its shortest form."""


class VarUIntError(DecodeError):
    """A variable-length unsigned integer of length 0, or longer than 8 bytes where that is not allowed."""


class InvalidAddressError(DecodeError):
    """Not an ILP address (RFC 0015)."""


class UnknownPacketTypeError(DecodeError):
    """A packet type byte that the protocol does not define."""


class UnexpectedPacketTypeError(DecodeError):
    """A well-formed packet of a type that is not allowed where it was found."""


class UnsupportedVersionError(DecodeError):
    """A protocol version this implementation does not speak."""


class InvalidTimestampError(DecodeError):
    """A timestamp that is malformed or names a date that does not exist."""


class InvalidTextError(DecodeError):
    """Text that is not valid in its declared encoding (ASCII or UTF-8)."""


class InvalidFieldError(DecodeError):
    """A field whose value breaks a rule of its protocol (a size limit, a required constant, ...)."""


class InvalidTokenError(DecodeError):
    """A STREAM server connection token or address segment that cannot be read."""


class DecryptionError(DecodeError):
    """AES-256-GCM authentication failed: corrupted data or the wrong key."""


class EncodeError(ValueError):
    """A value that cannot be encoded (out of range, wrong size, invalid address, ...)."""
