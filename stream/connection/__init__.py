"""Sans-I/O STREAM connections (RFC 0029, wire-compatible with ilp-protocol-stream 2.7.1 and 1.8.9).

One `StreamConnection` per STREAM connection, in either role: `is_server=True` answers a client that found us
through SPSP (it learns the client's address from ConnectionNewAddress), `is_server=False` opens the
connection to a known `remote_address`. Both roles send and receive money. Nothing here does I/O or reads a
clock: packets go in and out as objects, `now` is passed in, and the owner moves the packets and runs timers.

    conn = StreamConnection(keys=StreamKeys(shared_secret), is_server=..., local_address=our_ilp_address,
                            now=now, remote_address=None | address, asset=AssetDetails(code, scale) | None,
                            options=ConnectionOptions(...))

    reply = conn.handle_prepare(prepare, now)     # a Prepare for this connection -> ilp.Fulfill | ilp.Reject
    out = conn.poll(now)                          # OutgoingPrepare(id, prepare, kind) | None; call until None
    conn.handle_reply(out.id, reply, now)         # its Fulfill / Reject (synthetic T00 or R00 on timeout)
    conn.next_wakeup()                            # datetime | None: poll again then (back-off, idle timeout)
    conn.drain_events()                           # list of stream.connection.events.Event, in order

    sid = conn.open_stream()                      # our parity: client odd, server even
    conn.set_send_max(sid, n); conn.set_receive_max(sid, n)
    conn.close_stream_when_sent(sid, close_connection=True)
    conn.close_stream(sid, error_code=NO_ERROR, message="")
    conn.close(error_code=NO_ERROR, message="")
    conn.stream(sid) -> StreamView                # totals, limits, in_flight, is_open, close code
    conn.keep_stream(sid)                         # stream(sid) keeps answering once it has closed

Driving it: after every `handle_prepare` / `handle_reply` / API call, call `poll(now)` until it returns None
and send what it returns; when it returns None, wake up at `next_wakeup()` (or on the next input). Prepares
in flight are bounded by `ConnectionOptions.max_in_flight` (rate probes go as one volley of five).
`is_closed` turns true, with a final `ConnectionClosed` event, once nothing is in flight and nothing is
left to send.

Receiving (`handle_prepare`): data that does not decrypt, or a STREAM packet not of type 12 -> F06 (an adapter
answers Prepares for unknown connections itself, F02). Otherwise every answer carries an encrypted STREAM
reply echoing the sequence, prepareAmount = the ILP amount that arrived, type 13 in a Fulfill and 14 in an F99
Reject, with ConnectionMaxData first. Unfulfillable Prepares (probes, ConnectionClose), prepareAmount above
the amount, money beyond a stream's ceil(1.01 * (receiveMax - totalReceived)) (+ StreamMaxMoney), money for a
closed stream (+ StreamClose StreamStateError) -> F99. Fulfilled Prepares credit their streams by shares
(floor, remainder to the lowest id) and the reply lists StreamMaxMoney + StreamMaxData of every open stream. A
ConnectionNewAddress earns ConnectionMaxStreamId + ConnectionAssetDetails in the reply. Remote stream ids of
the wrong parity (ProtocolViolation) or above our maximum (StreamIdError) close the connection, with the
ConnectionClose in the F99 reply.

Sending (`poll`): money goes in fulfillable Prepares to the remote address with StreamMoney(id, amount) per
stream, after StreamMaxMoney + StreamMaxData of every open stream (and StreamMoneyBlocked when the remote's
limit holds a stream back). A packet carries at most: per stream `send_max - total_sent - in_flight`, the
remote's `receive_max - total_received - in_flight` converted at the exchange rate (rounded up), and in total
the packet limit (fixed option, learnt from F08, shrunk on T04). prepareAmount is
floor(floor(amount * rate) * (1 - slippage)) when the rate is known (given, probed, or equal asset details),
else 0. Replies: Fulfill commits the amounts (MoneySent); F99 with a STREAM reply applies its frames and
returns the amounts (a reply showing less arrived than prepareAmount closes the connection: the rate fell);
F08 shrinks the packet size; T codes (and F99 without a STREAM reply) back off 100 ms doubling up to
`max_retry_delay`; any other F or R code closes the connection with InternalError. Control-only Prepares
(amount 0, fulfillable) go out when a stream opens or its receive_max grows, to close a stream, and, for a
client, to introduce itself: until a STREAM reply arrives every client Prepare carries
ConnectionNewAddress + ConnectionAssetDetails.

Closing: `close()` (NoError) waits for the Prepares in flight, sends StreamClose for the open streams in an
amount-0 fulfillable Prepare, then ConnectionClose in an amount-0 unfulfillable one; error codes skip the
StreamClose step. `close_stream_when_sent` closes a stream the moment its send_max is fully sent (the pull
server's "end the stream and the connection at sendMax", RFC 0036), so a JS puller's receiveTotal settles at
once. A remote ConnectionClose ends the connection (closed by remote, with its code); idle timeout closes with
InternalError. The stages of the close handshake and what moves them: `stream.connection.closing`.

Streams: the remote holds at most `max_remote_streams` open (ConnectionMaxStreamId, raised by one stream for
each of its streams it closes; a higher id closes the connection with StreamIdError). A stream whose close is
settled (the remote knows, nothing in flight, StreamClosed emitted) is forgotten, so what a connection holds
and walks per packet does not grow with the streams it ever had: `stream(sid)` describes the last
`CLOSED_VIEWS_KEPT` closed ones and those the owner kept (`keep_stream`), and frames for a forgotten stream
are answered as for any closed one (StreamClose StreamStateError for money or data; nothing reopens it).
"""

from stream.connection.connection import ConnectionUsageError, StreamConnection
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
from stream.connection.outgoing import OutgoingPrepare, PacketKind
from stream.connection.streams import StreamView

__all__ = [
    "AssetDetails",
    "ConnectionClosed",
    "ConnectionOptions",
    "ConnectionUsageError",
    "Event",
    "ExchangeRateProbed",
    "MoneyReceived",
    "MoneySent",
    "OutgoingPrepare",
    "PacketKind",
    "RemoteAddressChanged",
    "RemoteAssetDetails",
    "RemoteReceiveMax",
    "RemoteSendBlocked",
    "StreamClosed",
    "StreamConnection",
    "StreamOpened",
    "StreamView",
]
