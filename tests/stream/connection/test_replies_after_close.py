"""A Fulfill for a Prepare in flight counts whatever happened to the stream or the connection meanwhile: the
connection stays closing (not closed) while anything is in flight, and reports the money as sent."""

from collections.abc import Callable

import pytest

from stream.connection import MoneySent, OutgoingPrepare, StreamConnection, StreamOpened
from stream.crypto import StreamKeys
from stream.frames import StreamErrorCode
from stream.ilp import Fulfill, Reject
from tests.stream.connection.harness import SECRET, T0, make_pair

KEYS = StreamKeys(SECRET)


def _exchange(sender: StreamConnection, receiver: StreamConnection) -> None:
    """Everything `sender` has to say, answered by `receiver` at once."""
    while (out := sender.poll(T0)) is not None:
        sender.handle_reply(out.id, receiver.handle_prepare(out.prepare, T0), T0)


def _money_in_flight() -> tuple[StreamConnection, StreamConnection, int, OutgoingPrepare]:
    client, server = make_pair()
    stream_id = client.open_stream()
    client.set_receive_max(stream_id, 1000)
    _exchange(client, server)
    assert any(isinstance(e, StreamOpened) for e in server.drain_events())
    server.set_send_max(stream_id, 1000)
    out = server.poll(T0)
    assert out is not None and out.prepare.amount == 1000
    return client, server, stream_id, out


def _remote_closes_stream(client: StreamConnection, server: StreamConnection, stream_id: int) -> None:
    client.close_stream(stream_id)
    _exchange(client, server)


def _remote_closes_connection(client: StreamConnection, server: StreamConnection, stream_id: int) -> None:
    client.close(StreamErrorCode.APPLICATION_ERROR, "leaving")
    _exchange(client, server)


def _local_close(client: StreamConnection, server: StreamConnection, stream_id: int) -> None:
    server.close()


def _local_failure(client: StreamConnection, server: StreamConnection, stream_id: int) -> None:
    server.close(StreamErrorCode.INTERNAL_ERROR, "internal error")


Closing = Callable[[StreamConnection, StreamConnection, int], None]


@pytest.mark.parametrize(
    "closing", [_remote_closes_stream, _remote_closes_connection, _local_close, _local_failure]
)
def test_a_fulfill_after_the_close_is_reported_as_sent(closing: Closing) -> None:
    client, server, stream_id, out = _money_in_flight()
    closing(client, server, stream_id)
    assert not server.stream(stream_id).is_open
    assert not server.is_closed and server.stream(stream_id).in_flight == 1000
    server.drain_events()

    server.handle_reply(out.id, Fulfill(KEYS.fulfillment(out.prepare.data), b""), T0)

    events = server.drain_events()
    assert MoneySent(stream_id, 1000, 1000) in events
    view = server.stream(stream_id)
    assert (view.total_sent, view.in_flight) == (1000, 0)


@pytest.mark.parametrize("closing", [_remote_closes_stream, _remote_closes_connection, _local_failure])
def test_a_reject_after_the_close_is_not_reported_as_sent(closing: Closing) -> None:
    client, server, stream_id, out = _money_in_flight()
    closing(client, server, stream_id)

    server.handle_reply(out.id, Reject("F99", "test.puller", "", b""), T0)

    view = server.stream(stream_id)
    assert (view.total_sent, view.in_flight) == (0, 0)
    assert not any(isinstance(e, MoneySent) for e in server.drain_events())
