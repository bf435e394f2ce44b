"""ILP addresses (RFC 0015), validated exactly as ilp-packet 3.x does while deserializing."""

import functools
import re

from stream.errors import InvalidAddressError
from stream.oer import BytesLike

MAX_ADDRESS_LENGTH = 1023

_ALLOCATION_SCHEMES = r"(?:g|private|example|peer|self|test[1-3]?|local)"
_SEGMENT = r"[.][a-zA-Z0-9_~-]+"
_ADDRESS = re.compile(rf"{_ALLOCATION_SCHEMES}(?:{_SEGMENT})+")
_ADDRESS_BYTES = re.compile(_ADDRESS.pattern.encode("ascii"))


@functools.lru_cache(maxsize=4096)
def is_valid_address(address: str) -> bool:
    """Remembered: the few addresses a process writes (its own, its peers') are checked once each, not on
    every packet that carries them."""
    return len(address) <= MAX_ADDRESS_LENGTH and _ADDRESS.fullmatch(address) is not None


def validate_address(address: str) -> str:
    """Return `address` unchanged, or raise `InvalidAddressError`."""
    if not is_valid_address(address):
        raise InvalidAddressError(f"invalid ILP address: {address[:64]!r}")
    return address


def decode_address(raw: BytesLike) -> str:
    """An address read off the wire: validated on the bytes, so decoding as ASCII cannot fail afterwards."""
    if len(raw) > MAX_ADDRESS_LENGTH or _ADDRESS_BYTES.fullmatch(raw) is None:
        raise InvalidAddressError(f"invalid ILP address: {bytes(raw[:64])!r}")
    return str(raw, "ascii")
