"""Exchange-rate probing as the JS STREAM client does it at connect.

A volley of unfulfillable Prepares of 1, 1e3, 1e6, 1e9 and 1e12 source units goes out at once. The receiver
answers each with F99 and a STREAM reply whose prepareAmount is what arrived; the rate is taken from the
probe whose delivered amount has the most digits, and it needs at least `min_precision` digits. F08 replies
teach the path's max packet amount (floor(source * maximum / received)) and set the next volley's amounts;
T errors add a probe of 2/3 of the smallest T-rejected amount after a back-off (100 ms * 1.5^n). After
`max_attempts` volleys without a precise enough result, or when no amount is left to try, probing fails.
"""

from datetime import datetime, timedelta
from fractions import Fraction

from stream.connection.amounts import digit_count
from stream.errors import DecodeError
from stream.ilp import decode_max_packet_details
from stream.oer import U64_MAX, BytesLike

PROBE_AMOUNTS = (1, 10**3, 10**6, 10**9, 10**12)


class RateProber:
    __slots__ = (
        "_attempts",
        "_delay",
        "_delivered",
        "_max_attempts",
        "_min_precision",
        "_outstanding",
        "_pending",
        "_sizes",
        "_temporary",
        "_volley",
        "failure",
        "max_packet_amount",
        "rate",
        "retry_at",
    )

    def __init__(self, min_precision: int, max_attempts: int, retry_delay: timedelta) -> None:
        self._min_precision = min_precision
        self._max_attempts = max_attempts
        self._delay = retry_delay
        self._attempts = 0
        self.rate: Fraction | None = None
        self.max_packet_amount = U64_MAX
        self.failure: str | None = None
        self.retry_at: datetime | None = None
        self._volley: list[int] = []
        self._pending: list[int] = []
        self._outstanding = 0
        self._delivered: dict[int, int] = {}
        self._sizes: list[int] = []
        self._temporary: list[int] = []
        self._start_volley(list(PROBE_AMOUNTS))

    def _start_volley(self, amounts: list[int]) -> None:
        self._attempts += 1
        self._volley = amounts
        self._pending = list(range(len(amounts)))
        self._outstanding = 0
        self._delivered = {}
        self._sizes = []
        self._temporary = []

    @property
    def finished(self) -> bool:
        return self.rate is not None or self.failure is not None

    @property
    def idle(self) -> bool:
        """No probe awaits a reply."""
        return self._outstanding == 0

    def expire_back_off(self, now: datetime) -> None:
        if self.retry_at is not None and now >= self.retry_at:
            self.retry_at = None

    def next_probe(self, now: datetime) -> tuple[int, int] | None:
        """(index, source amount) of the next probe to send, or None while there is none or it must wait."""
        if self.finished or not self._pending or (self.retry_at is not None and now < self.retry_at):
            return None
        index = self._pending.pop(0)
        self._outstanding += 1
        return index, self._volley[index]

    def on_delivered(self, index: int, delivered: int, now: datetime) -> None:
        """An F99 STREAM reply said `delivered` arrived."""
        if delivered > 0:
            self._delivered[index] = delivered
        self._settle(now)

    def on_amount_too_large(self, index: int, data: BytesLike, now: datetime) -> None:
        try:
            details = decode_max_packet_details(data)
        except DecodeError:
            details = None
        if details is not None and details.received > 0:
            self._sizes.append(self._volley[index] * details.maximum // details.received)
        self._settle(now)

    def on_temporary(self, index: int, now: datetime) -> None:
        self._temporary.append(self._volley[index])
        self._settle(now)

    def on_other(self, now: datetime) -> None:
        """Any other outcome: no information."""
        self._settle(now)

    def _settle(self, now: datetime) -> None:
        self._outstanding -= 1
        if self._outstanding == 0 and not self._pending and not self.finished:
            self._evaluate(now)

    def _evaluate(self, now: datetime) -> None:
        self.max_packet_amount = min([*self._sizes, self.max_packet_amount])
        if self.max_packet_amount == 0:
            self.failure = "cannot send through this path: its maximum packet amount is 0"
            return
        best_digits = 0
        for index in range(len(self._volley)):
            delivered = self._delivered.get(index)
            if delivered is not None and digit_count(delivered) >= best_digits:
                best_digits = digit_count(delivered)
                self.rate = Fraction(delivered, self._volley[index])
        if best_digits >= self._min_precision:
            return
        self.rate = None
        amounts = list(dict.fromkeys(size for size in self._sizes if size != U64_MAX))
        if self._temporary:
            smallest = min(self._temporary)
            amounts.append(smallest - smallest // 3)
            self.retry_at = now + self._delay
            self._delay = self._delay * 3 // 2
        if not amounts or self._attempts >= self._max_attempts:
            self.failure = (
                "unable to establish the exchange rate: no probe delivered an amount with at least "
                f"{self._min_precision} digits"
            )
            return
        self._start_volley(amounts)
