"""Prepares a connection sends, and what it remembers about each until its reply arrives."""

from dataclasses import dataclass
from enum import Enum

from stream.connection.streams import StreamRecord
from stream.frames import Frame
from stream.ilp import Prepare


class PacketKind(Enum):
    PROBE = "probe"  # unfulfillable rate probe
    STREAM = "stream"  # fulfillable: money and/or control frames (stream open, limits, StreamClose)
    CLOSE = "close"  # unfulfillable ConnectionClose


@dataclass(frozen=True, slots=True)
class OutgoingPrepare:
    """A Prepare to send to the remote. Hand its Fulfill or Reject (or a synthetic T00/R00 when it times out)
    back with `StreamConnection.handle_reply(id, reply, now)`. `id` is the packet's STREAM sequence."""

    id: int
    prepare: Prepare
    kind: PacketKind


class SentPacket:
    """Bookkeeping of one Prepare in flight: what to commit on Fulfill and to undo on Reject."""

    __slots__ = (
        "advertised",
        "amount",
        "closes",
        "condition",
        "holds",
        "kind",
        "minimum",
        "probe_index",
        "queued",
        "sequence",
    )

    def __init__(
        self,
        sequence: int,
        kind: PacketKind,
        *,
        amount: int = 0,
        condition: bytes | None = None,
        minimum: int = 0,
        holds: list[tuple[StreamRecord, int, int]] | None = None,
        closes: list[StreamRecord] | None = None,
        advertised: list[StreamRecord] | None = None,
        queued: list[Frame] | None = None,
        probe_index: int = -1,
    ) -> None:
        self.sequence = sequence
        self.kind = kind
        self.amount = amount
        self.condition = condition
        self.minimum = minimum
        self.holds = holds or []  # (stream, source amount, expected destination amount)
        self.closes = closes or []
        self.advertised = advertised or []
        self.queued = queued or []
        self.probe_index = probe_index
