"""Per-stream state of a STREAM connection (internal), and the read-only `StreamView` handed to callers.

Money of a stream, in the units of the side that counts it:

- sending: `send_max` (our limit), `total_sent` (fulfilled), `held` (in Prepares awaiting replies);
- receiving: `receive_max` (our limit), `total_received`;
- the remote's receiving limit as last reported by StreamMaxMoney: `remote_receive_max` (2**64-1 = unlimited,
  the value before any report) and `remote_total_received`, plus `held_destination`, what our in-flight
  Prepares are expected to deliver on it.
"""

from dataclasses import dataclass
from enum import Enum

from stream.oer import U64_MAX


class CloseState(Enum):
    OPEN = "open"
    PENDING = "pending"  # closed here; the remote still has to be told with a StreamClose frame
    SENDING = "sending"  # a Prepare carrying the StreamClose awaits its reply
    TOLD = "told"  # the remote knows (it closed the stream, or got our StreamClose)


class StreamRecord:
    __slots__ = (
        "advertise",
        "by_remote",
        "close",
        "close_when_sent",
        "closed_by_remote",
        "error_code",
        "held",
        "held_destination",
        "id",
        "kept",
        "message",
        "receive_max",
        "remote_limit_known",
        "remote_receive_max",
        "remote_total_received",
        "reported_closed",
        "send_max",
        "total_received",
        "total_sent",
    )

    def __init__(self, stream_id: int, *, by_remote: bool) -> None:
        self.id = stream_id
        self.by_remote = by_remote
        self.send_max = 0
        self.total_sent = 0
        self.held = 0
        self.held_destination = 0
        self.receive_max = 0
        self.total_received = 0
        self.remote_receive_max = U64_MAX
        self.remote_total_received = 0
        self.remote_limit_known = False
        self.advertise = not by_remote
        self.close_when_sent = False
        self.close = CloseState.OPEN
        self.closed_by_remote = False
        self.error_code = 0
        self.message = ""
        self.reported_closed = False
        self.kept = False  # the owner reads it after it closes: its final view is kept

    @property
    def is_open(self) -> bool:
        return self.close is CloseState.OPEN

    @property
    def finished(self) -> bool:
        """Closed, the remote told, nothing in flight, StreamClosed reported: the connection may forget it."""
        return self.close is CloseState.TOLD and self.held == 0 and self.reported_closed

    @property
    def available_to_send(self) -> int:
        if self.close is not CloseState.OPEN:
            return 0
        return max(0, self.send_max - self.total_sent - self.held)

    @property
    def remote_room(self) -> int:
        """What the remote still accepts on this stream beyond our in-flight packets (2**64-1: unlimited)."""
        if self.remote_receive_max == U64_MAX:
            return U64_MAX
        return max(0, self.remote_receive_max - self.remote_total_received - self.held_destination)

    @property
    def send_complete(self) -> bool:
        return self.held == 0 and self.total_sent >= self.send_max

    def update_remote_limit(self, receive_max: int, total_received: int) -> bool:
        """Apply a StreamMaxMoney as JS does (totals never go down, a finite limit never shrinks); True for
        the first report and whenever something changed."""
        before = (self.remote_receive_max, self.remote_total_received, self.remote_limit_known)
        self.remote_limit_known = True
        self.remote_total_received = max(self.remote_total_received, total_received)
        if self.remote_receive_max == U64_MAX:
            self.remote_receive_max = receive_max
        else:
            self.remote_receive_max = max(self.remote_receive_max, receive_max)
        return before != (self.remote_receive_max, self.remote_total_received, True)

    def view(self) -> "StreamView":
        return StreamView(
            stream_id=self.id,
            opened_by_remote=self.by_remote,
            send_max=self.send_max,
            total_sent=self.total_sent,
            in_flight=self.held,
            receive_max=self.receive_max,
            total_received=self.total_received,
            remote_receive_max=self.remote_receive_max,
            remote_total_received=self.remote_total_received,
            is_open=self.is_open,
            closed_by_remote=self.closed_by_remote,
            error_code=None if self.is_open else self.error_code,
            message=self.message,
        )


@dataclass(frozen=True, slots=True)
class StreamView:
    """A snapshot of one stream. `error_code` is None while the stream is open."""

    stream_id: int
    opened_by_remote: bool
    send_max: int
    total_sent: int
    in_flight: int
    receive_max: int
    total_received: int
    remote_receive_max: int
    remote_total_received: int
    is_open: bool
    closed_by_remote: bool
    error_code: int | None
    message: str
