"""Integer money arithmetic of STREAM: rate conversions, slippage, receive tolerance, share splitting.

Amounts are ints (u64 on the wire); rates and ratios are `Fraction`s, applied with integer floor/ceil
division so no precision is ever lost to floats.
"""

from collections.abc import Mapping
from fractions import Fraction

ONE = Fraction(1)


def to_destination(source_amount: int, rate: Fraction) -> int:
    """floor(source * rate): what `source_amount` is expected to deliver."""
    if rate == ONE:
        return source_amount
    return source_amount * rate.numerator // rate.denominator


def source_for_destination(destination_amount: int, rate: Fraction) -> int:
    """ceil(destination / rate): the source amount that delivers at least `destination_amount`."""
    if rate == ONE:
        return destination_amount
    return -(-destination_amount * rate.denominator // rate.numerator)


def minimum_destination(source_amount: int, rate: Fraction, slippage: Fraction) -> int:
    """floor(floor(source * rate) * (1 - slippage)), the prepareAmount of a money Prepare."""
    expected = to_destination(source_amount, rate)
    return expected * (slippage.denominator - slippage.numerator) // slippage.denominator


def receivable(receive_max: int, total_received: int, tolerance: Fraction) -> int:
    """ceil(tolerance * (receiveMax - totalReceived)): the most one packet may bring a stream."""
    remaining = receive_max - total_received
    if remaining <= 0:
        return 0
    return -(-remaining * tolerance.numerator // tolerance.denominator)


def split_by_shares(amount: int, shares: Mapping[int, int]) -> dict[int, int]:
    """Split `amount` over streams in proportion to their shares: floor each part, the remainder goes to the
    lowest stream id. `shares` must sum to more than 0."""
    total = sum(shares.values())
    parts = {stream_id: amount * share // total for stream_id, share in shares.items()}
    remainder = amount - sum(parts.values())
    if remainder:
        parts[min(parts)] += remainder
    return parts


def digit_count(value: int) -> int:
    return len(str(value)) if value > 0 else 0
