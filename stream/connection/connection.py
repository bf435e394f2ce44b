"""`StreamConnection`: one STREAM connection (RFC 0029), either role, sans-I/O. See the package docstring."""

import hmac
from collections import OrderedDict
from datetime import datetime
from fractions import Fraction

from stream.address import is_valid_address
from stream.connection import amounts
from stream.connection.closing import Stage, Trigger, advance
from stream.connection.congestion import Congestion
from stream.connection.events import (
    ConnectionClosed,
    Event,
    ExchangeRateProbed,
    MoneyReceived,
    MoneySent,
    RemoteAddressChanged,
    RemoteAssetDetails,
    RemoteReceiveMax,
    RemoteSendBlocked,
    StreamClosed,
    StreamOpened,
)
from stream.connection.options import AssetDetails, ConnectionOptions
from stream.connection.outgoing import OutgoingPrepare, PacketKind, SentPacket
from stream.connection.probe import RateProber
from stream.connection.stream_ids import RemoteStreamIds
from stream.connection.streams import CloseState, StreamRecord, StreamView
from stream.crypto import StreamKeys, random_condition, sha256
from stream.errors import DecodeError
from stream.frames import (
    ConnectionAssetDetails,
    ConnectionClose,
    ConnectionMaxData,
    ConnectionMaxStreamId,
    ConnectionNewAddress,
    Frame,
    StreamClose,
    StreamData,
    StreamErrorCode,
    StreamMaxData,
    StreamMaxMoney,
    StreamMoney,
    StreamMoneyBlocked,
)
from stream.ilp import ErrorCode, Fulfill, IlpPacketType, IlpReply, Prepare, Reject
from stream.oer import U64_MAX
from stream.packet import StreamPacket, decrypt_packet, encrypt_packet

MAX_SEQUENCE = 2**31 - 1
DEFAULT_REMOTE_MAX_STREAM_ID = 20
# Views of closed streams the connection still hands out (`stream(id)`), the most recently closed ones.
CLOSED_VIEWS_KEPT = 16
_ALREADY_CLOSED = "Stream is already closed"
# F99 without a STREAM reply (an intermediary's), and F08 on an amount-0 packet: back off and retry.
_RETRIED_FINAL_CODES = frozenset({ErrorCode.F99_APPLICATION_ERROR, ErrorCode.F08_AMOUNT_TOO_LARGE})


class ConnectionUsageError(Exception):
    """The caller asked for something the connection cannot do (unknown stream, limit below a total, ...)."""


class StreamConnection:
    __slots__ = (
        "_asset",
        "_close_code",
        "_close_message",
        "_closed_by_remote",
        "_closed_views",
        "_congestion",
        "_consecutive_rejects",
        "_events",
        "_in_flight",
        "_is_server",
        "_kept_views",
        "_keys",
        "_last_active",
        "_local_address",
        "_max_stream_id",
        "_next_sequence",
        "_next_stream_id",
        "_opts",
        "_probed_rate",
        "_prober",
        "_queued",
        "_regular_in_flight",
        "_remote_address",
        "_remote_asset",
        "_remote_ids",
        "_remote_knows_us",
        "_remote_max_stream_id",
        "_stage",
        "_streams",
        "_total_delivered",
        "_total_received",
        "_total_sent",
    )

    def __init__(
        self,
        *,
        keys: StreamKeys,
        is_server: bool,
        local_address: str,
        now: datetime,
        remote_address: str | None = None,
        asset: AssetDetails | None = None,
        options: ConnectionOptions | None = None,
    ) -> None:
        if not is_valid_address(local_address):
            raise ValueError(f"local_address is not a valid ILP address: {local_address[:64]!r}")
        if remote_address is not None and not is_valid_address(remote_address):
            raise ValueError(f"remote_address is not a valid ILP address: {remote_address[:64]!r}")
        opts = options or ConnectionOptions()
        self._keys = keys
        self._is_server = is_server
        self._local_address = local_address
        self._remote_address = remote_address
        self._asset = asset
        self._remote_asset: AssetDetails | None = None
        self._opts = opts
        # Streams open or still closing; finished ones are forgotten (their ids stay known as closed).
        self._streams: dict[int, StreamRecord] = {}
        self._closed_views: OrderedDict[int, StreamView] = OrderedDict()
        self._kept_views: dict[int, StreamView] = {}
        self._next_stream_id = 2 if is_server else 1
        self._remote_ids = RemoteStreamIds(1 if is_server else 2)
        self._max_stream_id = 2 * opts.max_remote_streams
        self._remote_max_stream_id = DEFAULT_REMOTE_MAX_STREAM_ID
        self._remote_knows_us = is_server
        self._queued: list[Frame] = []
        self._in_flight: dict[int, SentPacket] = {}
        self._regular_in_flight = 0
        self._next_sequence = 1
        self._congestion = Congestion(opts.max_packet_amount, opts.retry_delay, opts.max_retry_delay)
        self._consecutive_rejects = 0
        self._prober: RateProber | None = None
        self._probed_rate: Fraction | None = None
        self._stage = Stage.OPEN  # the close handshake (stream/connection/closing.py)
        # Why it closes (set by the first close, fail or remote close):
        self._close_code = 0
        self._close_message = ""
        self._closed_by_remote = False
        self._last_active = now
        self._events: list[Event] = []
        self._total_sent = 0
        self._total_received = 0
        self._total_delivered = 0

    # ------------------------------------------------------------------------------------------ properties

    @property
    def is_server(self) -> bool:
        return self._is_server

    @property
    def local_address(self) -> str:
        return self._local_address

    @property
    def remote_address(self) -> str | None:
        return self._remote_address

    @property
    def asset(self) -> AssetDetails | None:
        return self._asset

    @property
    def remote_asset(self) -> AssetDetails | None:
        return self._remote_asset

    @property
    def exchange_rate(self) -> Fraction:
        """Destination units per source unit used to size packets (1 while merely assumed)."""
        return self._rate()[0]

    @property
    def max_packet_amount(self) -> int | None:
        """The largest Prepare amount known to pass (configured or learnt), None while unlimited."""
        maximum = self._congestion.max_packet_amount
        return None if maximum == U64_MAX else maximum

    @property
    def total_sent(self) -> int:
        return self._total_sent

    @property
    def total_received(self) -> int:
        return self._total_received

    @property
    def total_delivered(self) -> int:
        """What the remote reported as arrived in the replies to our fulfilled Prepares (its units)."""
        return self._total_delivered

    @property
    def in_flight(self) -> int:
        """Number of our Prepares awaiting replies."""
        return len(self._in_flight)

    @property
    def is_open(self) -> bool:
        return self._stage.is_open

    @property
    def is_closed(self) -> bool:
        """Closed and settled: nothing in flight, nothing more to send (ConnectionClosed was emitted)."""
        return self._stage.is_closed

    @property
    def close_reason(self) -> tuple[int, str, bool] | None:
        """(error code, message, by remote) once the connection is closing or closed."""
        if self._stage.is_open:
            return None
        return self._close_code, self._close_message, self._closed_by_remote

    @property
    def stream_ids(self) -> tuple[int, ...]:
        """The streams `stream()` describes: open, closing, kept, and the most recently closed ones."""
        return (*self._streams, *self._kept_views, *self._closed_views)

    def stream(self, stream_id: int) -> StreamView:
        """A stream open or closing, kept (`keep_stream`), or among the last `CLOSED_VIEWS_KEPT` closed (the
        connection forgets a stream once its close is settled: closed views are final)."""
        stream = self._streams.get(stream_id)
        if stream is not None:
            return stream.view()
        view = self._kept_views.get(stream_id) or self._closed_views.get(stream_id)
        if view is None:
            raise ConnectionUsageError(f"no stream {stream_id} (or it closed and was forgotten)")
        return view

    def keep_stream(self, stream_id: int) -> None:
        """Keep describing the stream once closed, however many others close after it: for the streams the
        owner reads after they close. (A stream that closed just now can still be kept.)"""
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.kept = True
        elif stream_id in self._closed_views:
            self._kept_views[stream_id] = self._closed_views.pop(stream_id)
        elif stream_id not in self._kept_views:
            raise ConnectionUsageError(f"no stream {stream_id} (or it closed and was forgotten)")

    @property
    def remembered(self) -> int:
        """Stream records, closed-stream views and skipped stream ids this connection holds: what its memory
        and per-packet work grow with. Bounded by the streams open or closing, kept ones, and a few more."""
        return len(self._streams) + len(self._kept_views) + len(self._closed_views) + self._remote_ids.skipped

    def drain_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    # ---------------------------------------------------------------------------------------- stream API

    def open_stream(self) -> int:
        """Open a stream of our parity and return its id; its limits go out with the next Prepare."""
        if not self._stage.is_open:
            raise ConnectionUsageError("the connection is closing")
        stream_id = self._next_stream_id
        if stream_id > self._remote_max_stream_id:
            raise ConnectionUsageError(
                f"stream {stream_id} would exceed the remote's maximum stream id {self._remote_max_stream_id}"
            )
        self._next_stream_id += 2
        self._streams[stream_id] = StreamRecord(stream_id, by_remote=False)
        self._events.append(StreamOpened(stream_id, by_remote=False))
        return stream_id

    def set_send_max(self, stream_id: int, send_max: int) -> None:
        """How much this stream may send in total (our units); not below what was already sent."""
        stream = self._open_stream_record(stream_id)
        if not 0 <= send_max <= U64_MAX:
            raise ConnectionUsageError(f"send_max must be 0..2**64-1, got {send_max}")
        if send_max < stream.total_sent:
            raise ConnectionUsageError(f"send_max {send_max} is below total_sent {stream.total_sent}")
        stream.send_max = send_max
        self._housekeeping()

    def set_receive_max(self, stream_id: int, receive_max: int) -> None:
        """How much this stream accepts in total (our units; 2**64-1 = unlimited); it can only grow."""
        stream = self._open_stream_record(stream_id)
        if not 0 <= receive_max <= U64_MAX:
            raise ConnectionUsageError(f"receive_max must be 0..2**64-1, got {receive_max}")
        if receive_max < stream.receive_max:
            raise ConnectionUsageError(f"receive_max cannot decrease ({stream.receive_max} -> {receive_max})")
        if receive_max != stream.receive_max:
            stream.receive_max = receive_max
            stream.advertise = True

    def close_stream_when_sent(self, stream_id: int, *, close_connection: bool = True) -> None:
        """Close the stream (StreamClose NoError) as soon as its send_max has been sent and nothing is in
        flight on it; with `close_connection` the connection closes once no stream is left open."""
        stream = self._open_stream_record(stream_id)
        stream.close_when_sent = True
        if close_connection:
            self._advance(Trigger.CLOSE_WHEN_STREAMS_DONE)
        self._housekeeping()

    def close_stream(
        self, stream_id: int, error_code: int = StreamErrorCode.NO_ERROR, message: str = ""
    ) -> None:
        """Stop sending on the stream and tell the remote (after its in-flight money is settled). A closed
        stream (also one forgotten) stays as it is."""
        if self._is_forgotten(stream_id):
            return
        stream = self._stream(stream_id)
        if stream.is_open:
            self._close_locally(stream, error_code, message)
            self._housekeeping()

    def close(self, error_code: int = StreamErrorCode.NO_ERROR, message: str = "") -> None:
        """End the connection. NoError: once in-flight packets are settled, StreamClose for the open streams
        in a fulfillable Prepare, then ConnectionClose in an unfulfillable one. Other codes: ConnectionClose
        straight away."""
        if not self._stage.is_open:
            return
        if error_code != StreamErrorCode.NO_ERROR:
            self._fail(error_code, message)
        else:
            self._close_cleanly(message)
            for stream in self._streams.values():
                if stream.is_open:
                    self._close_locally(stream, error_code, message)
        self._housekeeping()

    # ------------------------------------------------------------------------------------------ incoming

    def handle_prepare(self, prepare: Prepare, now: datetime) -> IlpReply:
        """Answer a Prepare addressed to this connection. Never raises on wire input."""
        try:
            request = decrypt_packet(self._keys, prepare.data)
        except DecodeError:
            return self._unexpected_payment()
        if request.ilp_packet_type is not IlpPacketType.PREPARE:
            return self._unexpected_payment()
        reply_frames: list[Frame] = [ConnectionMaxData(self._opts.connection_max_data)]
        if self._stage.is_closed:
            return self._reject(prepare, request.sequence, reply_frames)
        self._last_active = now
        try:
            return self._receive(prepare, request, reply_frames)
        finally:
            self._housekeeping()

    def _receive(self, prepare: Prepare, request: StreamPacket, reply_frames: list[Frame]) -> IlpReply:
        sequence = request.sequence
        frames = request.frames
        if not self._register_streams(frames, reply_frames):
            return self._reject(prepare, sequence, reply_frames)
        self._apply_control_frames(frames, incoming=True)
        if request.prepare_amount > prepare.amount:
            return self._reject(prepare, sequence, reply_frames)
        fulfillment = self._keys.fulfillment(prepare.data)
        if not hmac.compare_digest(sha256(fulfillment), prepare.execution_condition):
            return self._reject(prepare, sequence, reply_frames)
        parts = self._split_money(prepare.amount, frames, reply_frames)
        if parts is None:
            return self._reject(prepare, sequence, reply_frames)
        for stream_id, part in parts.items():
            if part:
                stream = self._streams[stream_id]
                stream.total_received += part
                self._events.append(MoneyReceived(stream_id, part, stream.total_received))
        self._total_received += prepare.amount
        if not self._stage.remote_closed:
            self._append_stream_state(reply_frames)
        self._complete_reply(reply_frames)
        data = encrypt_packet(
            self._keys, StreamPacket(sequence, IlpPacketType.FULFILL, prepare.amount, tuple(reply_frames))
        )
        return Fulfill(fulfillment, data)

    def _register_streams(self, frames: tuple[Frame, ...], reply_frames: list[Frame]) -> bool:
        """Open the streams the remote starts; False (the reply frames say why) when the packet must be
        rejected: a stream id breaking the rules (the connection closes), or money or data for a closed
        stream."""
        for frame in frames:
            if not isinstance(frame, StreamMoney | StreamMaxMoney | StreamMaxData | StreamData):
                continue
            stream = self._streams.get(frame.stream_id)
            if stream is not None:
                if not stream.is_open and isinstance(frame, StreamMoney | StreamData):
                    self._tell_stream_closed(stream, reply_frames)
                    return False
            elif self._is_forgotten(frame.stream_id):
                if isinstance(frame, StreamMoney | StreamData):
                    self._tell_forgotten_closed(frame.stream_id, reply_frames)
                    return False
            elif self._stage.is_open and not self._open_remote_stream(frame.stream_id):
                return False
        return True

    def _is_forgotten(self, stream_id: int) -> bool:
        """A stream that was opened and, its close settled, forgotten (`_streams` no longer holds it)."""
        if stream_id in self._streams:
            return False
        if (stream_id % 2 == 0) == self._is_server:
            return stream_id < self._next_stream_id
        return stream_id in self._remote_ids

    def _open_remote_stream(self, stream_id: int) -> bool:
        if (stream_id % 2 == 0) == self._is_server:
            side = "Client" if self._is_server else "Server"
            parity = "odd" if self._is_server else "even"
            message = (
                f"Invalid Stream ID: {stream_id}. {side}-initiated streams must have {parity}-numbered IDs"
            )
            self._fail(StreamErrorCode.PROTOCOL_VIOLATION, message)
            return False
        if stream_id > self._max_stream_id:
            message = (
                f"Maximum number of open streams exceeded. Got stream: {stream_id}, "
                f"current max stream ID: {self._max_stream_id}"
            )
            self._fail(StreamErrorCode.STREAM_ID_ERROR, message)
            return False
        if self._max_stream_id * 3 < stream_id * 4:
            self._queue(ConnectionMaxStreamId(self._max_stream_id))
        self._remote_ids.add(stream_id)
        self._streams[stream_id] = StreamRecord(stream_id, by_remote=True)
        self._events.append(StreamOpened(stream_id, by_remote=True))
        return True

    def _tell_stream_closed(self, stream: StreamRecord, reply_frames: list[Frame]) -> None:
        self._tell_forgotten_closed(stream.id, reply_frames)
        if stream.close is CloseState.PENDING:
            stream.close = CloseState.TOLD

    @staticmethod
    def _tell_forgotten_closed(stream_id: int, reply_frames: list[Frame]) -> None:
        if not any(isinstance(f, StreamClose) and f.stream_id == stream_id for f in reply_frames):
            reply_frames.append(StreamClose(stream_id, StreamErrorCode.STREAM_STATE_ERROR, _ALREADY_CLOSED))

    def _split_money(
        self, amount: int, frames: tuple[Frame, ...], reply_frames: list[Frame]
    ) -> dict[int, int] | None:
        """The amount per stream, or None (reply frames explain) when a stream cannot take its part."""
        shares: dict[int, int] = {}
        for frame in frames:
            if isinstance(frame, StreamMoney):
                shares[frame.stream_id] = shares.get(frame.stream_id, 0) + frame.shares
        if not shares or not any(shares.values()):
            return None if amount else {}
        parts = amounts.split_by_shares(amount, shares)
        tolerance = self._opts.receive_tolerance
        for stream_id, part in parts.items():
            stream = self._streams.get(stream_id)
            if stream is None:
                reply_frames.append(
                    StreamClose(stream_id, StreamErrorCode.STREAM_STATE_ERROR, _ALREADY_CLOSED)
                )
                return None
            limit = amounts.receivable(stream.receive_max, stream.total_received, tolerance)
            if part > min(limit, U64_MAX - stream.total_received):
                reply_frames.append(StreamMaxMoney(stream_id, stream.receive_max, stream.total_received))
                return None
            if not stream.is_open:
                self._tell_stream_closed(stream, reply_frames)
                return None
        return parts

    def _append_stream_state(self, reply_frames: list[Frame]) -> None:
        max_data = self._opts.stream_max_data
        for stream in self._streams.values():
            if stream.is_open:
                reply_frames.append(StreamMaxMoney(stream.id, stream.receive_max, stream.total_received))
                reply_frames.append(StreamMaxData(stream.id, max_data))
                stream.advertise = False
            elif stream.close is CloseState.PENDING and stream.held == 0:
                reply_frames.append(StreamClose(stream.id, stream.error_code, stream.message))
                stream.close = CloseState.TOLD

    def _reject(self, prepare: Prepare, sequence: int, reply_frames: list[Frame]) -> Reject:
        self._complete_reply(reply_frames)
        data = encrypt_packet(
            self._keys, StreamPacket(sequence, IlpPacketType.REJECT, prepare.amount, tuple(reply_frames))
        )
        return Reject(ErrorCode.F99_APPLICATION_ERROR, self._local_address, "", data)

    def _complete_reply(self, reply_frames: list[Frame]) -> None:
        """Queued frames go out with any reply; so does our ConnectionClose once the remote may hear it: after
        an error, or after our ConnectionClose Prepare (a clean close tells streams first)."""
        reply_frames.extend(self._take_queued())
        if self._stage.close_in_replies:
            self._advance(Trigger.SAY_CLOSE)
            reply_frames.append(ConnectionClose(self._close_code, self._close_message))

    def _unexpected_payment(self) -> Reject:
        return Reject(ErrorCode.F06_UNEXPECTED_PAYMENT, self._local_address, "", b"")

    def _queue(self, frame: Frame) -> None:
        """Say `frame` with the next packet either way (once, however often the remote asks)."""
        if frame not in self._queued:
            self._queued.append(frame)

    def _take_queued(self) -> list[Frame]:
        queued, self._queued = self._queued, []
        return queued

    # --------------------------------------------------------------------------- frames from the remote

    def _apply_control_frames(self, frames: tuple[Frame, ...], *, incoming: bool) -> None:
        for frame in frames:
            if isinstance(frame, StreamMaxMoney):
                stream = self._streams.get(frame.stream_id)
                if stream is not None and stream.update_remote_limit(frame.receive_max, frame.total_received):
                    self._events.append(
                        RemoteReceiveMax(stream.id, stream.remote_receive_max, stream.remote_total_received)
                    )
            elif isinstance(frame, StreamClose):
                self._on_remote_stream_close(frame)
            elif isinstance(frame, ConnectionNewAddress):
                self._on_new_address(frame.source_account, incoming=incoming)
            elif isinstance(frame, ConnectionAssetDetails):
                asset = AssetDetails(frame.source_asset_code, frame.source_asset_scale)
                if asset != self._remote_asset:
                    self._remote_asset = asset
                    self._events.append(RemoteAssetDetails(asset))
            elif isinstance(frame, ConnectionMaxStreamId):
                self._remote_max_stream_id = frame.max_stream_id
            elif isinstance(frame, ConnectionClose):
                self._on_remote_close(frame.error_code, frame.message)
            elif isinstance(frame, StreamMoneyBlocked) and frame.stream_id in self._streams:
                self._events.append(RemoteSendBlocked(frame.stream_id, frame.send_max, frame.total_sent))

    def _on_new_address(self, address: str, *, incoming: bool) -> None:
        if incoming:
            self._queue(ConnectionMaxStreamId(self._max_stream_id))
            if self._asset is not None:
                self._queue(ConnectionAssetDetails(self._asset.code, self._asset.scale))
        if address != self._remote_address and is_valid_address(address):
            self._remote_address = address
            self._events.append(RemoteAddressChanged(address))

    def _on_remote_stream_close(self, frame: StreamClose) -> None:
        stream = self._streams.get(frame.stream_id)
        if stream is None or not stream.is_open:
            return
        stream.close = CloseState.TOLD
        stream.closed_by_remote = True
        stream.error_code = frame.error_code
        stream.message = frame.message
        if stream.by_remote:
            # One of its streams is gone: it may open another. (Ours it closes give it no more room.)
            self._max_stream_id += 2
            self._queue(ConnectionMaxStreamId(self._max_stream_id))

    def _on_remote_close(self, error_code: int, message: str) -> None:
        if self._stage.is_closed:
            return
        if self._stage.is_open:
            self._set_close_reason(error_code, message, by_remote=True)
        self._advance(Trigger.REMOTE_CLOSE)
        for stream in self._streams.values():
            if stream.is_open:
                stream.closed_by_remote = True
                stream.error_code = error_code
                stream.message = message
            if stream.close is not CloseState.SENDING:
                stream.close = CloseState.TOLD

    # ------------------------------------------------------------------------------------------ outgoing

    def poll(self, now: datetime) -> OutgoingPrepare | None:
        """The next Prepare to send, or None (then wait for a reply, or until `next_wakeup()`)."""
        if self._stage.is_closed:
            return None
        try:
            return self._poll(now)
        finally:
            self._housekeeping()

    def _poll(self, now: datetime) -> OutgoingPrepare | None:
        self._congestion.expire_back_off(now)
        if self._prober is not None:
            self._prober.expire_back_off(now)
        idle = self._opts.idle_timeout
        if self._stage.is_open and idle is not None and now - self._last_active >= idle:
            self._fail(StreamErrorCode.INTERNAL_ERROR, "Connection timed out due to inactivity")
        if self._remote_address is None or self._stage.remote_closed:
            return None
        if self._stage.is_open and self._probing():
            return self._poll_probe(now)
        if self._stage.is_open and self._next_sequence >= MAX_SEQUENCE:
            self._fail(StreamErrorCode.INTERNAL_ERROR, "Connection exceeded maximum number of packets")
        if not self._stage.is_open:
            return self._poll_closing(now)
        if self._regular_in_flight >= self._opts.max_in_flight or not self._congestion.may_send(now):
            return None
        return self._poll_stream_packet(now)

    def _poll_closing(self, now: datetime) -> OutgoingPrepare | None:
        if self._in_flight:
            return None
        packet = self._poll_stream_packet(now, closing=True)
        if packet is not None or not self._stage.close_due:
            return packet
        self._advance(Trigger.SAY_CLOSE)
        frames = (ConnectionClose(self._close_code, self._close_message),)
        return self._send(now, SentPacket(self._take_sequence(), PacketKind.CLOSE), frames)

    def _probing(self) -> bool:
        """Whether rate probing holds back other packets (starting it when it is due)."""
        prober = self._prober
        if prober is None:
            if not self._wants_probe():
                return False
            prober = self._prober = RateProber(
                self._opts.min_rate_precision, self._opts.max_probe_attempts, self._opts.retry_delay
            )
        return not prober.finished or not prober.idle

    def _wants_probe(self) -> bool:
        if self._opts.exchange_rate is not None:
            return False
        if self._opts.probe_exchange_rate:
            return True
        if self._asset is None or self._remote_asset is None or self._asset == self._remote_asset:
            return False
        return any(stream.available_to_send for stream in self._streams.values())

    def _poll_probe(self, now: datetime) -> OutgoingPrepare | None:
        assert self._prober is not None
        probe = self._prober.next_probe(now)
        if probe is None:
            return None
        index, amount = probe
        frames = self._handshake_frames()
        packet = SentPacket(self._take_sequence(), PacketKind.PROBE, amount=amount, probe_index=index)
        return self._send(now, packet, frames)

    def _handshake_frames(self) -> list[Frame]:
        if self._remote_knows_us:
            return []
        frames: list[Frame] = [ConnectionNewAddress(self._local_address)]
        if self._asset is not None:
            frames.append(ConnectionAssetDetails(self._asset.code, self._asset.scale))
        return frames

    def _poll_stream_packet(self, now: datetime, *, closing: bool = False) -> OutgoingPrepare | None:
        """A fulfillable Prepare with money and/or control frames, if there is anything to say. While closing
        only StreamClose frames are worth a packet."""
        rate, trusted = self._rate()
        holds, blocked = ([], []) if closing else self._plan_money(rate)
        closes = [s for s in self._streams.values() if s.close is CloseState.PENDING and s.held == 0]
        worth_a_packet = bool(closes) if closing else bool(holds or closes or self._control_due())
        if not worth_a_packet:
            return None
        queued = self._take_queued()
        frames: list[Frame] = [*queued, *self._handshake_frames()]
        advertised = self._add_stream_limits(frames)
        for stream in closes:
            frames.append(StreamClose(stream.id, stream.error_code, stream.message))
            stream.close = CloseState.SENDING
        held = self._hold_money(holds, rate, frames)
        for stream in blocked:
            frames.append(StreamMoneyBlocked(stream.id, stream.send_max, stream.total_sent))
        total = sum(amount for _, amount, _ in held)
        minimum = amounts.minimum_destination(total, rate, self._opts.slippage) if trusted else 0
        packet = SentPacket(
            self._take_sequence(),
            PacketKind.STREAM,
            amount=total,
            minimum=minimum,
            holds=held,
            closes=closes,
            advertised=advertised,
            queued=queued,
        )
        return self._send(now, packet, frames)

    def _control_due(self) -> bool:
        """Whether control frames alone are worth a packet: new limits, our introduction, queued frames."""
        if self._queued or (not self._remote_knows_us and not self._in_flight):
            return True
        return any(s.advertise and s.is_open for s in self._streams.values())

    def _add_stream_limits(self, frames: list[Frame]) -> list[StreamRecord]:
        """StreamMaxMoney and StreamMaxData of every open stream; the streams whose new limits these are."""
        advertised: list[StreamRecord] = []
        max_data = self._opts.stream_max_data
        for stream in self._streams.values():
            if stream.is_open:
                frames.append(StreamMaxMoney(stream.id, stream.receive_max, stream.total_received))
                frames.append(StreamMaxData(stream.id, max_data))
                if stream.advertise:
                    stream.advertise = False
                    advertised.append(stream)
        return advertised

    def _hold_money(
        self, holds: list[tuple[StreamRecord, int]], rate: Fraction, frames: list[Frame]
    ) -> list[tuple[StreamRecord, int, int]]:
        """Put each stream's amount in flight (StreamMoney frames): (stream, amount, expected delivery)."""
        held: list[tuple[StreamRecord, int, int]] = []
        for stream, amount in holds:
            expected = amounts.to_destination(amount, rate)
            stream.held += amount
            stream.held_destination += expected
            held.append((stream, amount, expected))
            frames.append(StreamMoney(stream.id, amount))
        return held

    def _plan_money(self, rate: Fraction) -> tuple[list[tuple[StreamRecord, int]], list[StreamRecord]]:
        """How much each open stream puts into the next packet, and which streams the remote blocks."""
        room_left = self._congestion.packet_limit
        if rate > 1:
            room_left = min(room_left, U64_MAX * rate.denominator // rate.numerator)
        holds: list[tuple[StreamRecord, int]] = []
        blocked: list[StreamRecord] = []
        for stream in self._streams.values():
            available = stream.available_to_send
            if not available:
                continue
            remote_room = stream.remote_room
            if remote_room == U64_MAX:
                amount = min(available, room_left)
            else:
                amount = min(available, room_left, amounts.source_for_destination(remote_room, rate))
                left = available - amount
                if left and amounts.to_destination(left, rate) > remote_room - amounts.to_destination(
                    amount, rate
                ):
                    blocked.append(stream)
            if amount:
                holds.append((stream, amount))
                room_left -= amount
                if not room_left:
                    break
        return holds, blocked

    def _send(
        self, now: datetime, packet: SentPacket, frames: list[Frame] | tuple[Frame, ...]
    ) -> OutgoingPrepare:
        assert self._remote_address is not None
        data = encrypt_packet(
            self._keys, StreamPacket(packet.sequence, IlpPacketType.PREPARE, packet.minimum, tuple(frames))
        )
        if packet.kind is PacketKind.STREAM:
            packet.condition = self._keys.condition(data)
            condition = packet.condition
            self._regular_in_flight += 1
        else:
            condition = random_condition()
        self._in_flight[packet.sequence] = packet
        prepare = Prepare(
            amount=packet.amount,
            expires_at=now + self._opts.packet_timeout,
            execution_condition=condition,
            destination=self._remote_address,
            data=data,
        )
        return OutgoingPrepare(packet.sequence, prepare, packet.kind)

    def _take_sequence(self) -> int:
        sequence = self._next_sequence
        self._next_sequence += 1
        return sequence

    # --------------------------------------------------------------------------------------------- replies

    def handle_reply(self, packet_id: int, reply: IlpReply, now: datetime) -> None:
        """The Fulfill or Reject of our Prepare `packet_id` (unknown ids are ignored)."""
        packet = self._in_flight.pop(packet_id, None)
        if packet is None:
            return
        self._last_active = now
        try:
            if packet.kind is PacketKind.STREAM:
                self._regular_in_flight -= 1
                self._on_stream_reply(packet, reply, now)
            elif packet.kind is PacketKind.PROBE:
                self._on_probe_reply(packet, reply, now)
        finally:
            self._housekeeping()

    def _on_stream_reply(self, packet: SentPacket, reply: IlpReply, now: datetime) -> None:
        if isinstance(reply, Fulfill):
            self._on_stream_fulfill(packet, reply)
            return
        self._release(packet)
        if reply.code == ErrorCode.F99_APPLICATION_ERROR and reply.data:
            self._on_stream_application_reject(packet, reply, now)
        else:
            self._requeue(packet)
            self._on_stream_path_reject(packet, reply, now)

    def _on_stream_fulfill(self, packet: SentPacket, reply: Fulfill) -> None:
        if packet.condition is None or not hmac.compare_digest(sha256(reply.fulfillment), packet.condition):
            self._release(packet)
            message = f"Got invalid fulfillment for packet {packet.sequence}"
            self._fail(StreamErrorCode.INTERNAL_ERROR, message)
            return
        self._commit(packet)
        if reply.data:
            response = self._open_reply(reply.data, packet.sequence, IlpPacketType.FULFILL)
            if response is not None:
                self._total_delivered += response.prepare_amount
                self._apply_control_frames(response.frames, incoming=False)

    def _on_stream_application_reject(self, packet: SentPacket, reply: Reject, now: datetime) -> None:
        """The receiver's own F99 (its STREAM reply inside): it saw the packet and said why not."""
        response = self._open_reply(reply.data, packet.sequence, IlpPacketType.REJECT)
        if response is None:
            return
        self._remote_knows_us = True
        self._settle_closes(packet)
        self._apply_control_frames(response.frames, incoming=False)
        if response.prepare_amount < packet.minimum:
            self._fail(
                StreamErrorCode.APPLICATION_ERROR,
                f"Exchange rate below the minimum: {response.prepare_amount} arrived, "
                f"at least {packet.minimum} expected",
            )
            return
        self._consecutive_rejects += 1
        if self._consecutive_rejects > 1:
            self._congestion.back_off(now)

    def _on_stream_path_reject(self, packet: SentPacket, reply: Reject, now: datetime) -> None:
        """A reject from the path (or one without a STREAM reply): the packet is queued again, and the
        code says whether to send smaller, slower, or give up."""
        code = reply.code
        if code == ErrorCode.F08_AMOUNT_TOO_LARGE and packet.amount:
            if self._congestion.on_amount_too_large(packet.amount, reply.data) == 0:
                self._fail(
                    StreamErrorCode.INTERNAL_ERROR, "Cannot send. Path has a Maximum Packet Amount of 0"
                )
        elif code.startswith("T") or code in _RETRIED_FINAL_CODES:
            if code == ErrorCode.T04_INSUFFICIENT_LIQUIDITY and packet.amount:
                self._congestion.on_insufficient_liquidity(packet.amount)
            self._congestion.back_off(now)
        else:
            self._fail(
                StreamErrorCode.INTERNAL_ERROR,
                f"Unexpected error while sending packet. Code: {code}, triggered by: {reply.triggered_by}, "
                f"message: {reply.message}",
            )

    def _on_probe_reply(self, packet: SentPacket, reply: IlpReply, now: datetime) -> None:
        prober = self._prober
        assert prober is not None
        index = packet.probe_index
        if isinstance(reply, Reject) and reply.code == ErrorCode.F99_APPLICATION_ERROR and reply.data:
            response = self._open_reply(reply.data, packet.sequence, IlpPacketType.REJECT)
            if response is None:
                prober.on_other(now)
                return
            self._remote_knows_us = True
            self._apply_control_frames(response.frames, incoming=False)
            prober.on_delivered(index, response.prepare_amount, now)
        elif isinstance(reply, Reject) and reply.code == ErrorCode.F08_AMOUNT_TOO_LARGE:
            prober.on_amount_too_large(index, reply.data, now)
        elif isinstance(reply, Reject) and reply.code.startswith("T"):
            prober.on_temporary(index, now)
        else:
            prober.on_other(now)
        if prober.failure is not None:
            self._fail(StreamErrorCode.INTERNAL_ERROR, prober.failure)
        elif prober.rate is not None and prober.idle and self._probed_rate is None:
            self._probed_rate = prober.rate
            if prober.max_packet_amount != U64_MAX:
                self._congestion.set_maximum(
                    min(prober.max_packet_amount, self._congestion.max_packet_amount)
                )
            self._events.append(ExchangeRateProbed(prober.rate, self.max_packet_amount))

    def _open_reply(self, data: bytes, sequence: int, expected: IlpPacketType) -> StreamPacket | None:
        """The STREAM packet in a reply, or None after failing the connection (JS destroys it too)."""
        try:
            response = decrypt_packet(self._keys, data)
        except DecodeError:
            self._fail(StreamErrorCode.INTERNAL_ERROR, "Unable to decrypt and parse response data")
            return None
        if response.sequence != sequence or response.ilp_packet_type is not expected:
            self._fail(
                StreamErrorCode.INTERNAL_ERROR,
                f"Response packet (sequence {response.sequence}, type {response.ilp_packet_type}) does not "
                f"correspond to the request (sequence {sequence}, type {expected})",
            )
            return None
        return response

    def _commit(self, packet: SentPacket) -> None:
        self._remote_knows_us = True
        self._consecutive_rejects = 0
        for stream, amount, expected in packet.holds:
            stream.held -= amount
            stream.held_destination -= expected
            stream.total_sent += amount
            self._events.append(MoneySent(stream.id, amount, stream.total_sent))
        self._total_sent += packet.amount
        self._congestion.on_fulfill(packet.amount)
        self._settle_closes(packet)

    def _release(self, packet: SentPacket) -> None:
        for stream, amount, expected in packet.holds:
            stream.held -= amount
            stream.held_destination -= expected

    def _settle_closes(self, packet: SentPacket) -> None:
        for stream in packet.closes:
            if stream.close is CloseState.SENDING:
                stream.close = CloseState.TOLD

    def _requeue(self, packet: SentPacket) -> None:
        """The packet never reached the remote: what it carried must be said again. A closing connection does
        not retry its StreamClose frames: its ConnectionClose says it all."""
        retry_close = CloseState.PENDING if self._stage.is_open else CloseState.TOLD
        for stream in packet.closes:
            if stream.close is CloseState.SENDING:
                stream.close = retry_close
        for stream in packet.advertised:
            if stream.is_open:
                stream.advertise = True
        if packet.queued:
            self._queued[:0] = packet.queued

    # ------------------------------------------------------------------------------------ timers, closing

    def next_wakeup(self) -> datetime | None:
        """When `poll` may have something new without any other input (back-off end, idle timeout); always
        later than the `now` of the last `poll`."""
        if self._stage.is_closed:
            return None
        candidates: list[datetime] = []
        if self._stage.is_open and self._opts.idle_timeout is not None:
            candidates.append(self._last_active + self._opts.idle_timeout)
        if self._congestion.retry_at is not None:
            candidates.append(self._congestion.retry_at)
        if self._prober is not None and self._prober.retry_at is not None and not self._prober.finished:
            candidates.append(self._prober.retry_at)
        return min(candidates) if candidates else None

    def _rate(self) -> tuple[Fraction, bool]:
        """(rate, trusted): trusted unless merely assumed 1:1 for want of asset details."""
        if self._opts.exchange_rate is not None:
            return self._opts.exchange_rate, True
        if self._probed_rate is not None:
            return self._probed_rate, True
        trusted = self._asset is not None and self._asset == self._remote_asset
        return amounts.ONE, trusted

    def _advance(self, trigger: Trigger) -> None:
        self._stage = advance(self._stage, trigger)

    def _set_close_reason(self, error_code: int, message: str, *, by_remote: bool) -> None:
        self._close_code = error_code
        self._close_message = message
        self._closed_by_remote = by_remote

    def _close_cleanly(self, message: str) -> None:
        self._set_close_reason(StreamErrorCode.NO_ERROR, message, by_remote=False)
        self._advance(Trigger.CLOSE)

    def _close_locally(self, stream: StreamRecord, error_code: int, message: str) -> None:
        stream.close = CloseState.PENDING
        stream.error_code = error_code
        stream.message = message

    def _fail(self, error_code: int, message: str) -> None:
        """Close with an error: no StreamClose frames, straight to ConnectionClose. While already closing,
        only give up on the StreamClose frames not yet sent."""
        if self._stage.is_closed:
            return
        if self._stage.is_open:
            self._set_close_reason(error_code, message, by_remote=False)
        self._advance(Trigger.FAIL)
        for stream in self._streams.values():
            if stream.is_open:
                stream.error_code = error_code
                stream.message = message
            if stream.close is not CloseState.SENDING:
                stream.close = CloseState.TOLD

    def _housekeeping(self) -> None:
        """Close streams that are done, report settled streams, and finish the connection when it can."""
        if self._stage.is_closed:
            return
        open_streams = False
        finished: list[StreamRecord] = []
        for stream in self._streams.values():
            if stream.is_open and stream.close_when_sent and stream.send_complete:
                self._close_locally(stream, StreamErrorCode.NO_ERROR, "")
            if stream.is_open:
                open_streams = True
                continue
            if not stream.reported_closed and stream.held == 0:
                stream.reported_closed = True
                self._events.append(
                    StreamClosed(stream.id, stream.error_code, stream.message, stream.closed_by_remote)
                )
            if stream.finished:
                finished.append(stream)
        for stream in finished:
            self._forget(stream)
        if self._stage is Stage.OPEN_UNTIL_STREAMS_DONE and not open_streams:
            self._close_cleanly("")
        if not self._stage.is_open and not self._in_flight and not self._has_closing_work():
            self._advance(Trigger.SETTLE)
            self._events.append(
                ConnectionClosed(self._close_code, self._close_message, self._closed_by_remote)
            )

    def _forget(self, stream: StreamRecord) -> None:
        """Drop a finished stream's record (frames for it are still answered: `_is_forgotten`), keeping its
        view among the last few closed ones."""
        del self._streams[stream.id]
        if stream.kept:
            self._kept_views[stream.id] = stream.view()
            return
        self._closed_views[stream.id] = stream.view()
        if len(self._closed_views) > CLOSED_VIEWS_KEPT:
            self._closed_views.popitem(last=False)

    def _has_closing_work(self) -> bool:
        if self._remote_address is None or self._stage.remote_closed:
            return False
        if self._stage.close_due:
            return True
        return any(s.close is CloseState.PENDING for s in self._streams.values())

    # --------------------------------------------------------------------------------------------- helpers

    def _stream(self, stream_id: int) -> StreamRecord:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise ConnectionUsageError(f"no stream {stream_id}")
        return stream

    def _open_stream_record(self, stream_id: int) -> StreamRecord:
        stream = self._stream(stream_id)
        if not stream.is_open:
            raise ConnectionUsageError(f"stream {stream_id} is closed")
        return stream
