"""A tiny synchronous network for driving two `StreamConnection`s against each other in memory.

`Network.run()` alternates: every side sends what `poll` gives, each Prepare passes the `Connector` (which may
cap packet amounts with F08, inject reject codes, or convert amounts at a rate) and is answered at once by the
other side; the replies are delivered afterwards, optionally shuffled and some held back for later rounds
(out-of-order and delayed replies). When nothing moves, the clock jumps to the earliest `next_wakeup()`.
Apps (callables) react to each side's events, like the code that owns a connection would.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fractions import Fraction

from stream import ilp
from stream.connection import (
    ConnectionOptions,
    Event,
    MoneyReceived,
    OutgoingPrepare,
    RemoteReceiveMax,
    StreamClosed,
    StreamConnection,
)
from stream.connection.options import AssetDetails
from stream.crypto import StreamKeys
from stream.ilp import IlpReply, Prepare, Reject

T0 = datetime(2030, 1, 1, tzinfo=UTC)
CLIENT_ADDRESS = "test.puller"
SERVER_ADDRESS = "test.pullserver"
CONNECTION_ADDRESS = "test.pullserver.conn1"
CONNECTOR_ADDRESS = "test.connector"
XRP = AssetDetails("XRP", 9)
SECRET = bytes(range(32))

App = Callable[[StreamConnection, list[Event], datetime], None]


@dataclass
class Connector:
    """Between the two sides: F08 above `max_packet_amount`, then `faults` (one per Prepare, None = pass),
    then amounts converted at `rate` (floor)."""

    max_packet_amount: int | None = None
    faults: list[str | None] = field(default_factory=list)
    rate: Fraction = Fraction(1)

    def forward(self, prepare: Prepare) -> Prepare | Reject:
        if self.max_packet_amount is not None and prepare.amount > self.max_packet_amount:
            details = ilp.encode_max_packet_details(
                ilp.MaxPacketDetails(prepare.amount, self.max_packet_amount)
            )
            message = (
                f"packet size too large. maxAmount={self.max_packet_amount} actualAmount={prepare.amount}"
            )
            return Reject("F08", CONNECTOR_ADDRESS, message, details)
        fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            return Reject(fault, CONNECTOR_ADDRESS, "injected", b"")
        if self.rate != 1:
            return replace(prepare, amount=prepare.amount * self.rate.numerator // self.rate.denominator)
        return prepare


@dataclass
class Sent:
    side: str
    out: OutgoingPrepare
    max_packet_known: int | None  # the sender's learnt limit when it built the packet
    reply: IlpReply | None = None


class Network:
    def __init__(
        self,
        client: StreamConnection,
        server: StreamConnection,
        *,
        connector: Connector | None = None,
        client_app: App | None = None,
        server_app: App | None = None,
        rng: random.Random | None = None,
        hold_back: float = 0.0,
        now: datetime = T0,
    ) -> None:
        self.sides = {"client": client, "server": server}
        self.peers = {"client": server, "server": client}
        self.apps: dict[str, App | None] = {"client": client_app, "server": server_app}
        self.connector = connector or Connector()
        self.rng = rng
        self.hold_back = hold_back
        self.now = now
        self.sent: list[Sent] = []
        self.events: dict[str, list[Event]] = {"client": [], "server": []}
        self._replies: list[tuple[str, Sent, IlpReply]] = []
        self.rounds = 0
        self.peak_in_flight = {"client": 0, "server": 0}

    def _react(self, side: str) -> None:
        conn = self.sides[side]
        events = conn.drain_events()
        if events:
            self.events[side].extend(events)
            app = self.apps[side]
            if app is not None:
                app(conn, events, self.now)

    def start(self) -> None:
        for side in self.sides:
            self._react(side)

    def _send_all(self) -> bool:
        moved = False
        for side, conn in self.sides.items():
            while (out := conn.poll(self.now)) is not None:
                moved = True
                self._react(side)
                self.peak_in_flight[side] = max(self.peak_in_flight[side], conn.in_flight)
                record = Sent(side, out, conn.max_packet_amount)
                self.sent.append(record)
                forwarded = self.connector.forward(out.prepare)
                if isinstance(forwarded, Reject):
                    reply: IlpReply = forwarded
                else:
                    peer_side = "server" if side == "client" else "client"
                    reply = self.peers[side].handle_prepare(forwarded, self.now)
                    self._react(peer_side)
                record.reply = reply
                self._replies.append((side, record, reply))
            wakeup = conn.next_wakeup()
            assert wakeup is None or wakeup > self.now, "a timer that poll has already passed"
            self._react(side)
        return moved

    def _deliver(self) -> bool:
        if not self._replies:
            return False
        batch, self._replies = self._replies, []
        if self.rng is not None:
            self.rng.shuffle(batch)
            kept = [item for item in batch if self.rng.random() < self.hold_back]
            if len(kept) < len(batch):
                self._replies = kept
                batch = [item for item in batch if item not in kept]
        for side, record, reply in batch:
            self.sides[side].handle_reply(record.out.id, reply, self.now)
            self._react(side)
        return True

    def run(self, max_rounds: int = 20_000) -> None:
        """Until both sides are closed; fails when stuck (nothing to do and no timer) or too long."""
        self.start()
        while not all(conn.is_closed for conn in self.sides.values()):
            self.rounds += 1
            assert self.rounds <= max_rounds, "the connections did not finish"
            if self._send_all() | self._deliver():
                continue
            if all(conn.is_closed for conn in self.sides.values()):
                break
            wakeups = [w for conn in self.sides.values() if (w := conn.next_wakeup()) is not None]
            assert wakeups, "stuck: nothing in flight, nothing to send, no timer"
            self.now = max(self.now, min(wakeups))

    def packets(self, side: str) -> list[Sent]:
        return [record for record in self.sent if record.side == side]


def make_pair(
    *,
    client_options: ConnectionOptions | None = None,
    server_options: ConnectionOptions | None = None,
    client_asset: AssetDetails | None = XRP,
    server_asset: AssetDetails | None = XRP,
) -> tuple[StreamConnection, StreamConnection]:
    client = StreamConnection(
        keys=StreamKeys(SECRET),
        is_server=False,
        local_address=CLIENT_ADDRESS,
        remote_address=CONNECTION_ADDRESS,
        asset=client_asset,
        options=client_options,
        now=T0,
    )
    server = StreamConnection(
        keys=StreamKeys(SECRET),
        is_server=True,
        local_address=SERVER_ADDRESS,
        asset=server_asset,
        options=server_options,
        now=T0,
    )
    return client, server


class Puller:
    """The JS puller's behaviour: stream 1 with receive_max = amount; end the connection when the amount
    has arrived or the server closed the stream."""

    def __init__(self, client: StreamConnection, amount: int) -> None:
        self.stream_id = client.open_stream()
        client.set_receive_max(self.stream_id, amount)
        self.amount = amount
        self.closed_at: datetime | None = None

    def __call__(self, conn: StreamConnection, events: list[Event], now: datetime) -> None:
        for event in events:
            if isinstance(event, MoneyReceived) and event.total_received >= self.amount:
                conn.close()
            elif isinstance(event, StreamClosed) and event.stream_id == self.stream_id:
                self.closed_at = self.closed_at or now
                conn.close()


class PullServer:
    """Grants the puller's stream up to `limit`, in reservations of `step` (all at once by default); ends the
    stream when the last reservation has been sent."""

    def __init__(self, limit: int, step: int | None = None) -> None:
        self.limit = limit
        self.step = step
        self.target: int | None = None

    def __call__(self, conn: StreamConnection, events: list[Event], now: datetime) -> None:
        for event in events:
            if isinstance(event, RemoteReceiveMax) and self.target is None:
                self.target = min(self.limit, event.receive_max - event.total_received)
                self._grant(conn, event.stream_id, 0)
        for stream_id in conn.stream_ids:
            view = conn.stream(stream_id)
            if view.is_open and self.target is not None and view.total_sent == view.send_max:
                self._grant(conn, stream_id, view.send_max)

    def _grant(self, conn: StreamConnection, stream_id: int, granted: int) -> None:
        assert self.target is not None
        if granted >= self.target > 0:
            return
        new = self.target if self.step is None else min(self.target, granted + self.step)
        conn.set_send_max(stream_id, new)
        if new == self.target:
            conn.close_stream_when_sent(stream_id)
