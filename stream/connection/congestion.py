"""Packet sizing and back-off of a STREAM sender, reacting to replies as ilp-protocol-stream 2.7.1 does.

- Fulfill of a packet exactly the size of the test amount: raise the test amount (by a tenth of the known
  maximum, or double it while no maximum is known).
- F08 with `receivedAmount · maximumAmount` data: maximum = test = floor(sent * maximum / received);
  without usable data: maximum = sent - 1, test = maximum / 2. A maximum of 0 means nothing can pass.
- T04: test = max(2, m - floor(m / 3)) with m = min(sent, test); then back off like any T error.
- T errors: wait `retry_delay`, doubling up to the cap; a Fulfill resets the delay.
"""

from datetime import datetime, timedelta

from stream.errors import DecodeError
from stream.ilp import decode_max_packet_details
from stream.oer import U64_MAX, BytesLike


class Congestion:
    __slots__ = ("_delay", "_fixed_max", "_max", "_max_delay", "_start_delay", "_test", "retry_at")

    def __init__(self, fixed_max: int | None, retry_delay: timedelta, max_retry_delay: timedelta) -> None:
        self._fixed_max = U64_MAX if fixed_max is None else fixed_max
        self._max = U64_MAX
        self._test = U64_MAX
        self._start_delay = retry_delay
        self._max_delay = max_retry_delay
        self._delay = retry_delay
        self.retry_at: datetime | None = None

    @property
    def max_packet_amount(self) -> int:
        """The largest amount known to pass (2**64-1 while unknown)."""
        return min(self._max, self._fixed_max)

    @property
    def learnt_max_packet_amount(self) -> int | None:
        return None if self._max == U64_MAX else self._max

    @property
    def packet_limit(self) -> int:
        """The most the next Prepare may carry."""
        return min(self._test, self._max, self._fixed_max)

    def set_maximum(self, amount: int) -> None:
        """What rate probes taught: both the maximum and the test amount."""
        self._max = self._test = amount

    def on_fulfill(self, amount_sent: int) -> None:
        self._delay = self._start_delay
        self.retry_at = None
        maximum = self.max_packet_amount
        if amount_sent != self._test or self._test >= maximum:
            return
        if maximum != U64_MAX:
            self._test = min(self._test + maximum // 10, maximum)
        else:
            self._test = min(self._test * 2, U64_MAX)

    def on_amount_too_large(self, amount_sent: int, data: BytesLike) -> int:
        """Shrink after F08; returns the new maximum (0: the path carries nothing)."""
        try:
            details = decode_max_packet_details(data)
        except DecodeError:
            details = None
        if details is not None and details.received > details.maximum:
            maximum = amount_sent * details.maximum // details.received
            self._max = min(self._max, maximum)
            self._test = self._max
        else:
            self._max = min(self._max, max(amount_sent - 1, 0))
            self._test = self.max_packet_amount // 2
        return self.max_packet_amount

    def on_insufficient_liquidity(self, amount_sent: int) -> None:
        smaller = min(amount_sent, self._test)
        self._test = max(2, smaller - smaller // 3)

    def back_off(self, now: datetime) -> None:
        """Hold further packets for the current retry delay, and double it for next time."""
        self.retry_at = now + self._delay
        self._delay = min(self._delay * 2, self._max_delay)

    def may_send(self, now: datetime) -> bool:
        return self.retry_at is None or now >= self.retry_at

    def expire_back_off(self, now: datetime) -> None:
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None
