"""Configuration of a STREAM connection: the local asset and the tunables (defaults as JS STREAM 2.7.1)."""

from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction

from stream.oer import U64_MAX


@dataclass(frozen=True, slots=True)
class AssetDetails:
    """An asset as ConnectionAssetDetails and IL-DCP describe it: a code and a scale (0..255)."""

    code: str
    scale: int

    def __post_init__(self) -> None:
        if not 0 <= self.scale <= 255:
            raise ValueError(f"asset scale must be 0..255, got {self.scale}")


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """Tunables of one connection.

    - `max_in_flight`: Prepares carrying money or control frames that may await their replies at once
      (JS: 1). Rate probes are sent as one volley of five regardless.
    - `packet_timeout`: a Prepare expires this long after `now` when it is built.
    - `idle_timeout`: the connection closes (InternalError) after this long without a decryptable Prepare or a
      reply; `None` disables it.
    - `max_remote_streams`: streams the remote may hold open at once; the advertised ConnectionMaxStreamId
      starts at twice this and rises by 2 for each of its streams the remote closes.
    - `connection_max_data` / `stream_max_data`: the byte windows advertised in ConnectionMaxData and
      StreamMaxData (no stream data is read; the values only mirror what JS peers expect).
    - `exchange_rate`: destination units per source unit, when the caller knows it. Without it the connection
      uses a probed rate, or 1 when both asset details are equal or one of them is unknown.
    - `probe_exchange_rate`: send the JS volley of unfulfillable probes (1, 1e3, 1e6, 1e9, 1e12) before any
      other packet, as the JS client does. A connection probes anyway before sending money when the two
      assets are known to differ and no rate was given.
    - `min_rate_precision` / `max_probe_attempts`: a probe result counts when the delivered amount has at
      least this many digits; the volley is retried (F08- and T-shrunk) at most this many times.
    - `slippage`: the share of the expected delivery a money Prepare may lose (prepareAmount =
      floor(floor(amount * rate) * (1 - slippage))); prepareAmount is 0 while the rate is only assumed.
    - `receive_tolerance`: a stream accepts up to ceil(tolerance * (receiveMax - totalReceived)) per packet.
    - `max_packet_amount`: a fixed cap on the amount of one Prepare, on top of what F08 replies teach.
    - `retry_delay` / `max_retry_delay`: back-off after T errors (and repeated F99s), doubling up to the cap.
    """

    max_in_flight: int = 1
    packet_timeout: timedelta = timedelta(seconds=30)
    idle_timeout: timedelta | None = timedelta(seconds=60)
    max_remote_streams: int = 10
    connection_max_data: int = 65534
    stream_max_data: int = 16384
    exchange_rate: Fraction | None = None
    probe_exchange_rate: bool = False
    min_rate_precision: int = 3
    max_probe_attempts: int = 15
    slippage: Fraction = Fraction(1, 100)
    receive_tolerance: Fraction = Fraction(101, 100)
    max_packet_amount: int | None = None
    retry_delay: timedelta = timedelta(milliseconds=100)
    max_retry_delay: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        if self.packet_timeout <= timedelta(0):
            raise ValueError("packet_timeout must be positive")
        if self.idle_timeout is not None and self.idle_timeout <= timedelta(0):
            raise ValueError("idle_timeout must be positive (or None)")
        if self.max_remote_streams < 0:
            raise ValueError("max_remote_streams must not be negative")
        if self.exchange_rate is not None and self.exchange_rate <= 0:
            raise ValueError("exchange_rate must be positive")
        if not 0 <= self.slippage < 1:
            raise ValueError("slippage must be in [0, 1)")
        if self.receive_tolerance < 1:
            raise ValueError("receive_tolerance must be at least 1")
        if self.max_packet_amount is not None and not 1 <= self.max_packet_amount <= U64_MAX:
            raise ValueError("max_packet_amount must be 1..2**64-1")
        if self.retry_delay <= timedelta(0) or self.max_retry_delay < self.retry_delay:
            raise ValueError("retry delays must be positive and max_retry_delay >= retry_delay")
        if self.min_rate_precision < 1 or self.max_probe_attempts < 1:
            raise ValueError("min_rate_precision and max_probe_attempts must be at least 1")
