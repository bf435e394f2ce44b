"""Amounts of money (integer minor units, u64) and other small integers as they arrive from outside."""

from __future__ import annotations

import re

from spsp_pull.domain.errors import InputError

U64_MAX = 2**64 - 1

_INTEGER_TEXT = re.compile(r"-?[0-9]+")
# Digits beyond this many (after leading zeros) exceed every range we accept; converting them anyway
# would only cost time (and Python refuses int() beyond 4,300 digits).
_MAX_SIGNIFICANT_DIGITS = len(str(U64_MAX))


class _NotAnInteger(Exception):
    pass


def _integer_value(value: object) -> int:
    """A JSON integer or an integer string as an int; anything else raises _NotAnInteger.

    Strings are plain ASCII digits with an optional leading '-' (so that a negative amount is reported as
    out of range rather than as malformed); no '+', whitespace, decimal point or exponent. Magnitudes
    too long to be in any accepted range come back as U64_MAX + 1 (with their sign).
    """
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _NotAnInteger
    if isinstance(value, int):
        return value
    if not _INTEGER_TEXT.fullmatch(value):
        raise _NotAnInteger
    negative = value.startswith("-")
    significant = value.lstrip("-").lstrip("0")
    magnitude = U64_MAX + 1 if len(significant) > _MAX_SIGNIFICANT_DIGITS else int(significant or "0")
    return -magnitude if negative else magnitude


def parse_amount(value: object, field: str, *, allow_zero: bool = False) -> int:
    """An amount in minor units: a JSON integer or an integer string in 1..U64_MAX (0.. with allow_zero)."""
    try:
        amount = _integer_value(value)
    except _NotAnInteger:
        raise InputError(
            "invalid-amount", f"{field} must be an integer or an integer string", field=field
        ) from None
    lowest = 0 if allow_zero else 1
    if not lowest <= amount <= U64_MAX:
        raise InputError(
            "amount-out-of-range", f"{field} must be between {lowest} and {U64_MAX}", field=field
        )
    return amount


def parse_count(value: object, field: str, minimum: int, maximum: int, code: str) -> int:
    """A small integer (cycles, asset scale) given as a JSON integer or an integer string."""
    try:
        count = _integer_value(value)
    except _NotAnInteger:
        raise InputError(code, f"{field} must be an integer", field=field) from None
    if not minimum <= count <= maximum:
        raise InputError(code, f"{field} must be between {minimum} and {maximum}", field=field)
    return count
