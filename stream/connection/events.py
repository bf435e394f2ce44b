"""What a STREAM connection reports to its owner (`StreamConnection.drain_events()`), in order.

Amounts are in the asset of the side that counts them: MoneySent in our units, MoneyReceived in ours too (it
is what arrived), RemoteReceiveMax in the remote's units. Error codes are the STREAM codes of
`stream.frames.StreamErrorCode` (any UInt8 may come from the wire).
"""

from dataclasses import dataclass
from fractions import Fraction
from typing import TypeAlias

from stream.connection.options import AssetDetails


@dataclass(frozen=True, slots=True)
class RemoteAddressChanged:
    """The remote announced (ConnectionNewAddress) where our Prepares must go."""

    address: str


@dataclass(frozen=True, slots=True)
class RemoteAssetDetails:
    asset: AssetDetails


@dataclass(frozen=True, slots=True)
class ExchangeRateProbed:
    """Rate probing finished: destination units per source unit, and the path's max packet amount (if any)."""

    rate: Fraction
    max_packet_amount: int | None


@dataclass(frozen=True, slots=True)
class StreamOpened:
    stream_id: int
    by_remote: bool


@dataclass(frozen=True, slots=True)
class RemoteReceiveMax:
    """The remote's limit for a stream changed: it accepts `receive_max - total_received` more (its units).
    `receive_max` is 2**64-1 when unlimited."""

    stream_id: int
    receive_max: int
    total_received: int


@dataclass(frozen=True, slots=True)
class RemoteSendBlocked:
    """The remote would send more on this stream than our receive_max allows (StreamMoneyBlocked)."""

    stream_id: int
    send_max: int
    total_sent: int


@dataclass(frozen=True, slots=True)
class MoneyReceived:
    stream_id: int
    amount: int
    total_received: int


@dataclass(frozen=True, slots=True)
class MoneySent:
    """A Prepare carrying `amount` for this stream was fulfilled."""

    stream_id: int
    amount: int
    total_sent: int


@dataclass(frozen=True, slots=True)
class StreamClosed:
    """A stream is closed and nothing is in flight on it any more: its totals are final."""

    stream_id: int
    error_code: int
    message: str
    by_remote: bool


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The connection is over: nothing in flight, nothing more to send. Emitted once, last."""

    error_code: int
    message: str
    by_remote: bool


Event: TypeAlias = (
    RemoteAddressChanged
    | RemoteAssetDetails
    | ExchangeRateProbed
    | StreamOpened
    | RemoteReceiveMax
    | RemoteSendBlocked
    | MoneyReceived
    | MoneySent
    | StreamClosed
    | ConnectionClosed
)
