"""A Python puller (client role) against a Python pull server (server role), in memory."""

import random
from datetime import timedelta
from fractions import Fraction
from typing import TypeVar

from stream.connection import (
    AssetDetails,
    ConnectionClosed,
    ConnectionOptions,
    Event,
    ExchangeRateProbed,
    MoneyReceived,
    MoneySent,
    PacketKind,
    StreamClosed,
    StreamConnection,
    StreamOpened,
)
from stream.crypto import StreamKeys
from stream.frames import StreamClose, StreamErrorCode, StreamMoney, StreamMoneyBlocked
from stream.ilp import Fulfill
from stream.packet import decrypt_packet
from tests.stream.connection.harness import T0, Connector, Network, Puller, PullServer, Sent, make_pair

KEYS = StreamKeys(bytes(range(32)))
E = TypeVar("E")


def _money_packets(net: Network, side: str = "server") -> list[Sent]:
    return [s for s in net.packets(side) if s.out.prepare.amount > 0]


def _fulfilled(records: list[Sent]) -> list[int]:
    return [s.out.prepare.amount for s in records if isinstance(s.reply, Fulfill)]


def _pull(
    amount: int,
    limit: int,
    *,
    step: int | None = None,
    connector: Connector | None = None,
    server_options: ConnectionOptions | None = None,
    rng: random.Random | None = None,
    hold_back: float = 0.0,
) -> tuple[Network, StreamConnection, StreamConnection, Puller]:
    client, server = make_pair(server_options=server_options)
    puller = Puller(client, amount)
    net = Network(
        client,
        server,
        connector=connector,
        client_app=puller,
        server_app=PullServer(limit, step),
        rng=rng,
        hold_back=hold_back,
    )
    net.run()
    return net, client, server, puller


def _of(events: list[Event], kind: type[E]) -> list[E]:
    return [event for event in events if isinstance(event, kind)]


def test_exact_amount_in_one_packet() -> None:
    net, client, server, _ = _pull(3000, 10_000)
    assert _fulfilled(_money_packets(net)) == [3000]
    assert client.stream(1).total_received == server.stream(1).total_sent == 3000
    assert client.is_closed
    assert server.is_closed
    assert _of(net.events["server"], MoneySent) == [MoneySent(1, 3000, 3000)]
    assert _of(net.events["client"], MoneyReceived) == [MoneyReceived(1, 3000, 3000)]
    assert net.events["client"][-1] == ConnectionClosed(StreamErrorCode.NO_ERROR, "", by_remote=False)
    assert net.now == T0


def test_money_prepares_as_js_sends_them() -> None:
    net, *_ = _pull(3000, 10_000)
    (money,) = _money_packets(net)
    packet = decrypt_packet(KEYS, money.out.prepare.data)
    assert packet.prepare_amount == 2970
    assert packet.frames[-1] == StreamMoney(1, 3000)
    assert money.out.prepare.destination == "test.puller"
    assert money.out.prepare.expires_at == T0 + timedelta(seconds=30)
    assert money.out.kind is PacketKind.STREAM


def test_partial_pull_ends_the_stream_at_once() -> None:
    net, client, server, puller = _pull(5000, 3000)
    assert client.stream(1).total_received == server.stream(1).total_sent == 3000
    closed = _of(net.events["client"], StreamClosed)
    assert closed == [StreamClosed(1, StreamErrorCode.NO_ERROR, "", by_remote=True)]
    assert puller.closed_at == T0
    after_money = net.packets("server")[net.packets("server").index(_money_packets(net)[-1]) + 1 :]
    first = decrypt_packet(KEYS, after_money[0].out.prepare.data)
    assert StreamClose(1, StreamErrorCode.NO_ERROR, "") in first.frames
    assert after_money[0].out.prepare.amount == 0
    assert server.stream(1).error_code == StreamErrorCode.NO_ERROR
    assert not server.stream(1).closed_by_remote


def test_money_packet_says_when_the_receiver_blocks() -> None:
    net, _, server, _ = _pull(2000, 3000, connector=Connector(max_packet_amount=500))
    money = [decrypt_packet(KEYS, s.out.prepare.data) for s in _money_packets(net)]
    assert not any(isinstance(f, StreamMoneyBlocked) for p in money for f in p.frames)
    assert server.stream(1).total_sent == 2000


def test_max_packet_amount_forces_many_packets() -> None:
    net, client, server, _ = _pull(10_000, 10_000, connector=Connector(max_packet_amount=100))
    money = _money_packets(net)
    assert money[0].out.prepare.amount == 10_000
    assert money[0].reply is not None and getattr(money[0].reply, "code", None) == "F08"
    assert [s.out.prepare.amount for s in money[1:]] == [100] * 100
    assert server.max_packet_amount == 100
    assert client.stream(1).total_received == 10_000


def test_window_of_eight_in_flight() -> None:
    options = ConnectionOptions(max_in_flight=8)
    net, client, server, _ = _pull(
        20_000,
        20_000,
        connector=Connector(max_packet_amount=100),
        server_options=options,
        rng=random.Random(7),
        hold_back=0.3,
    )
    assert net.peak_in_flight["server"] == 8
    assert client.stream(1).total_received == server.stream(1).total_sent == 20_000
    assert all(s.out.prepare.amount <= 100 for s in _money_packets(net)[1:])
    assert server.is_closed and client.is_closed


def test_window_respects_the_remote_limit() -> None:
    options = ConnectionOptions(max_in_flight=8)
    net, client, server, _ = _pull(
        1050, 5000, connector=Connector(max_packet_amount=100), server_options=options, rng=random.Random(3)
    )
    assert client.stream(1).total_received == server.stream(1).total_sent == 1050
    rejected = [s for s in _money_packets(net) if getattr(s.reply, "code", None) == "F99"]
    assert not rejected


def test_temporary_rejects_mid_way_back_off_and_finish() -> None:
    faults: list[str | None] = [None, None, "T04", None, "T05", "T00", None, "T02"]
    connector = Connector(max_packet_amount=500, faults=faults)
    net, client, server, _ = _pull(4000, 4000, connector=connector)
    assert client.stream(1).total_received == server.stream(1).total_sent == 4000
    assert net.now > T0
    t04 = next(i for i, s in enumerate(net.sent) if getattr(s.reply, "code", None) == "T04")
    after = [s.out.prepare.amount for s in net.sent[t04 + 1 :] if s.side == "server" and s.out.prepare.amount]
    assert after[0] < 500


def test_final_reject_mid_way_ends_the_connection_with_an_error() -> None:
    connector = Connector(max_packet_amount=1000, faults=[None, None, None, "F02"])
    net, client, server, _ = _pull(5000, 5000, connector=connector)
    assert server.stream(1).total_sent == client.stream(1).total_received < 5000
    assert server.close_reason is not None
    assert server.close_reason[0] == StreamErrorCode.INTERNAL_ERROR
    server_closed = _of(net.events["server"], ConnectionClosed)
    assert len(server_closed) == 1
    assert client.is_closed
    client_closed = _of(net.events["client"], ConnectionClosed)
    assert client_closed[0].error_code == StreamErrorCode.INTERNAL_ERROR
    assert client_closed[0].by_remote


def test_send_max_raised_in_steps() -> None:
    net, client, server, _ = _pull(3000, 10_000, step=700)
    assert _fulfilled(_money_packets(net)) == [700, 700, 700, 700, 200]
    assert client.stream(1).total_received == 3000
    assert server.is_closed


def test_zero_balance_closes_the_stream_straight_away() -> None:
    net, client, server, _ = _pull(3000, 0)
    assert not _money_packets(net)
    assert _of(net.events["client"], StreamClosed) == [StreamClosed(1, StreamErrorCode.NO_ERROR, "", True)]
    assert client.is_closed and server.is_closed


def test_unlimited_receive_max() -> None:
    _, client, server, _ = _pull(2**64 - 1, 12_345)
    assert client.stream(1).total_received == 12_345
    assert client.stream(1).receive_max == 2**64 - 1
    assert server.is_closed


def test_explicit_exchange_rate() -> None:
    options = ConnectionOptions(exchange_rate=Fraction(2))
    net, client, server, _ = _pull(
        3000, 10_000, connector=Connector(rate=Fraction(2)), server_options=options
    )
    assert _fulfilled(_money_packets(net)) == [1500]
    assert client.stream(1).total_received == 3000
    assert server.total_delivered == 3000


def test_different_assets_make_the_sender_probe_the_rate() -> None:
    client, server = make_pair(server_asset=AssetDetails("USD", 2))
    puller = Puller(client, 3000)
    connector = Connector(rate=Fraction(3, 2))
    net = Network(client, server, connector=connector, client_app=puller, server_app=PullServer(10**9))
    net.run()
    probes = [s for s in net.packets("server") if s.out.kind is PacketKind.PROBE]
    assert [s.out.prepare.amount for s in probes] == [1, 10**3, 10**6, 10**9, 10**12]
    assert _of(net.events["server"], ExchangeRateProbed) == [ExchangeRateProbed(Fraction(3, 2), None)]
    assert _fulfilled(_money_packets(net)) == [2000]
    assert client.stream(1).total_received == 3000


def test_rate_falling_below_the_minimum_closes_the_connection() -> None:
    options = ConnectionOptions(exchange_rate=Fraction(1))
    _, client, server, _ = _pull(
        3000, 3000, connector=Connector(rate=Fraction(9, 10)), server_options=options
    )
    assert server.stream(1).total_sent == 0
    assert server.close_reason is not None
    assert server.close_reason[0] == StreamErrorCode.APPLICATION_ERROR
    assert client.stream(1).total_received == 0


def test_push_payment_from_the_client() -> None:
    client, server = make_pair()
    stream_id = client.open_stream()
    client.set_send_max(stream_id, 2500)
    client.close_stream_when_sent(stream_id)

    def receiver(conn: StreamConnection, events: list[Event], now: object) -> None:
        for event in events:
            if isinstance(event, StreamOpened) and event.by_remote:
                conn.set_receive_max(event.stream_id, 10_000)

    net = Network(client, server, server_app=receiver, connector=Connector(max_packet_amount=1000))
    net.run()
    assert server.stream(stream_id).total_received == client.stream(stream_id).total_sent == 2500
    assert _of(net.events["server"], StreamClosed) == [StreamClosed(1, StreamErrorCode.NO_ERROR, "", True)]
    assert server.is_closed and client.is_closed


def test_receiver_limit_rejects_are_retried_with_the_reported_limit() -> None:
    """The client raises its limit only after the first money arrived: the sender, which believed the limit
    unlimited, learns it from the F99 reply and sends what fits."""
    client, server = make_pair()
    stream_id = client.open_stream()
    client.set_send_max(stream_id, 1000)
    client.close_stream_when_sent(stream_id)
    opened: list[int] = []

    def receiver(conn: StreamConnection, events: list[Event], now: object) -> None:
        for event in events:
            if isinstance(event, StreamOpened):
                opened.append(event.stream_id)
                conn.set_receive_max(event.stream_id, 400)
            elif isinstance(event, MoneyReceived) and event.total_received == 400:
                conn.set_receive_max(event.stream_id, 1000)

    net = Network(client, server, server_app=receiver)
    net.run()
    assert opened == [1]
    assert server.stream(1).total_received == 1000
    amounts = [
        (s.out.prepare.amount, getattr(s.reply, "code", "fulfill")) for s in _money_packets(net, "client")
    ]
    assert amounts[0] == (1000, "F99")
    assert (400, "fulfill") in amounts


def test_close_waits_for_money_in_flight() -> None:
    client, server = make_pair()
    Puller(client, 1000)
    opening = client.poll(T0)
    assert opening is not None
    client.handle_reply(opening.id, server.handle_prepare(opening.prepare, T0), T0)
    server.set_send_max(1, 1000)
    money = server.poll(T0)
    assert money is not None and money.prepare.amount == 1000
    server.close()
    assert server.poll(T0) is None
    assert not server.is_open and not server.is_closed
    assert server.stream(1).in_flight == 1000
    server.handle_reply(money.id, client.handle_prepare(money.prepare, T0), T0)
    closing = server.poll(T0)
    assert closing is not None and closing.prepare.amount == 0
    assert decrypt_packet(KEYS, closing.prepare.data).frames == (
        StreamClose(1, StreamErrorCode.NO_ERROR, ""),
    )
    assert server.stream(1).total_sent == 1000
    server.handle_reply(closing.id, client.handle_prepare(closing.prepare, T0), T0)
    last = server.poll(T0)
    assert last is not None and last.kind is PacketKind.CLOSE
    server.handle_reply(last.id, client.handle_prepare(last.prepare, T0), T0)
    assert server.is_closed and client.is_closed
