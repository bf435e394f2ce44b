"""The connection's building blocks: amounts, congestion control, rate probing, options."""

from datetime import timedelta
from fractions import Fraction

import pytest

from stream import ilp
from stream.connection import AssetDetails, ConnectionOptions, ConnectionUsageError, PacketKind
from stream.connection.amounts import (
    minimum_destination,
    receivable,
    source_for_destination,
    split_by_shares,
    to_destination,
)
from stream.connection.congestion import Congestion
from stream.connection.probe import PROBE_AMOUNTS, RateProber
from stream.frames import StreamErrorCode
from stream.oer import U64_MAX
from tests.stream.connection.harness import T0, Connector, Network, Puller, PullServer, make_pair

MS = timedelta(milliseconds=1)


def _f08(received: int, maximum: int) -> bytes:
    return ilp.encode_max_packet_details(ilp.MaxPacketDetails(received, maximum))


def test_conversions_round_the_safe_way() -> None:
    rate = Fraction(3, 2)
    assert to_destination(7, rate) == 10
    assert source_for_destination(10, rate) == 7
    assert source_for_destination(11, rate) == 8
    assert to_destination(5, Fraction(1)) == 5
    assert minimum_destination(3000, Fraction(1), Fraction(1, 100)) == 2970
    assert minimum_destination(1000, Fraction(1), Fraction(0)) == 1000
    assert minimum_destination(7, rate, Fraction(1, 100)) == 9


def test_receivable_allows_one_percent_more_rounded_up() -> None:
    tolerance = Fraction(101, 100)
    assert receivable(3000, 0, tolerance) == 3030
    assert receivable(1, 0, tolerance) == 2
    assert receivable(100, 100, tolerance) == 0
    assert receivable(100, 150, tolerance) == 0
    assert receivable(U64_MAX, 0, tolerance) > U64_MAX


def test_split_by_shares() -> None:
    assert split_by_shares(100, {3: 1, 1: 2}) == {3: 33, 1: 67}
    assert split_by_shares(10, {5: 1, 7: 1, 9: 1}) == {5: 4, 7: 3, 9: 3}
    assert split_by_shares(0, {1: 5}) == {1: 0}
    assert split_by_shares(U64_MAX, {1: U64_MAX, 3: U64_MAX}) == {1: U64_MAX // 2 + 1, 3: U64_MAX // 2}


def test_congestion_doubles_without_a_known_maximum() -> None:
    congestion = Congestion(None, 100 * MS, 30_000 * MS)
    assert congestion.packet_limit == U64_MAX
    congestion.on_insufficient_liquidity(900)
    assert congestion.packet_limit == 600
    congestion.on_fulfill(600)
    assert congestion.packet_limit == 1200
    congestion.on_fulfill(5)
    assert congestion.packet_limit == 1200


def test_congestion_learns_from_f08() -> None:
    congestion = Congestion(None, 100 * MS, 30_000 * MS)
    assert congestion.on_amount_too_large(2500, _f08(5000, 2000)) == 1000
    assert congestion.packet_limit == 1000
    assert congestion.learnt_max_packet_amount == 1000
    congestion.on_insufficient_liquidity(1000)
    assert congestion.packet_limit == 667
    congestion.on_fulfill(667)
    assert congestion.packet_limit == 767
    for _ in range(5):
        congestion.on_fulfill(congestion.packet_limit)
    assert congestion.packet_limit == 1000


def test_congestion_f08_without_usable_data() -> None:
    congestion = Congestion(None, 100 * MS, 30_000 * MS)
    assert congestion.on_amount_too_large(1000, b"\x00") == 999
    assert congestion.packet_limit == 499
    assert congestion.on_amount_too_large(10, _f08(5, 9)) == 9


def test_congestion_fixed_cap_and_back_off() -> None:
    congestion = Congestion(50, 100 * MS, 350 * MS)
    assert congestion.packet_limit == 50
    congestion.back_off(T0)
    assert congestion.retry_at == T0 + 100 * MS
    assert not congestion.may_send(T0 + 99 * MS)
    assert congestion.may_send(T0 + 100 * MS)
    congestion.back_off(T0)
    congestion.back_off(T0)
    assert congestion.retry_at == T0 + 350 * MS
    congestion.on_fulfill(50)
    assert congestion.retry_at is None
    congestion.back_off(T0)
    assert congestion.retry_at == T0 + 100 * MS


def _volley(prober: RateProber) -> list[tuple[int, int]]:
    probes = []
    while (probe := prober.next_probe(T0 + timedelta(hours=1))) is not None:
        probes.append(probe)
    return probes


def test_prober_takes_the_most_precise_probe() -> None:
    prober = RateProber(3, 15, 100 * MS)
    probes = _volley(prober)
    assert [amount for _, amount in probes] == list(PROBE_AMOUNTS)
    for index, amount in probes:
        prober.on_delivered(index, amount * 3 // 7, T0)
    assert prober.rate == Fraction(10**12 * 3 // 7, 10**12)
    assert prober.max_packet_amount == U64_MAX


def test_prober_retries_with_f08_sizes_and_shrunk_t_amounts() -> None:
    prober = RateProber(3, 15, 100 * MS)
    probes = _volley(prober)
    prober.on_delivered(probes[0][0], 1, T0)
    prober.on_temporary(probes[1][0], T0)
    for index, amount in probes[2:]:
        prober.on_amount_too_large(index, _f08(amount, 500), T0)
    assert prober.rate is None and prober.failure is None
    assert prober.max_packet_amount == 500
    assert prober.next_probe(T0) is None
    assert prober.retry_at == T0 + 100 * MS
    second = _volley(prober)
    assert [amount for _, amount in second] == [500, 667]
    prober.on_delivered(second[0][0], 500, T0)
    prober.on_delivered(second[1][0], 667, T0)
    assert prober.rate == 1


def test_prober_fails_without_precision() -> None:
    prober = RateProber(3, 15, 100 * MS)
    for index, _ in _volley(prober):
        prober.on_delivered(index, 0, T0)
    assert prober.failure is not None
    assert prober.rate is None


def test_prober_fails_on_a_zero_maximum() -> None:
    prober = RateProber(3, 15, 100 * MS)
    for index, amount in _volley(prober):
        prober.on_amount_too_large(index, _f08(amount, 0), T0)
    assert prober.failure is not None and "0" in prober.failure


def test_prober_gives_up_after_its_attempts() -> None:
    prober = RateProber(3, 2, 100 * MS)
    for index, _ in _volley(prober):
        prober.on_temporary(index, T0)
    assert prober.failure is None
    for index, _ in _volley(prober):
        prober.on_temporary(index, T0)
    assert prober.failure is not None


def test_connection_fails_when_the_rate_cannot_be_probed() -> None:
    client, server = make_pair(server_options=ConnectionOptions(probe_exchange_rate=True))
    net = Network(
        client,
        server,
        connector=Connector(rate=Fraction(1, 10**11)),
        client_app=Puller(client, 100),
        server_app=PullServer(100),
    )
    net.run()
    assert server.close_reason is not None
    assert server.close_reason[0] == StreamErrorCode.INTERNAL_ERROR
    assert "exchange rate" in server.close_reason[1]
    assert client.stream(1).total_received == 0


def test_probes_survive_temporary_errors() -> None:
    options = ConnectionOptions(probe_exchange_rate=True)
    client, server = make_pair(client_options=options)
    connector = Connector(faults=[None, "T04", "T05", "T00", "T02"])
    net = Network(
        client, server, connector=connector, client_app=Puller(client, 10), server_app=PullServer(10)
    )
    net.run()
    probes = [s.out.prepare.amount for s in net.packets("client") if s.out.kind is PacketKind.PROBE]
    assert probes == [*PROBE_AMOUNTS, 667]
    assert client.stream(1).total_received == 10
    assert net.now >= T0 + timedelta(milliseconds=100)


def test_options_are_validated() -> None:
    for bad in (
        {"max_in_flight": 0},
        {"exchange_rate": Fraction(0)},
        {"slippage": Fraction(1)},
        {"receive_tolerance": Fraction(1, 2)},
        {"max_packet_amount": 0},
        {"idle_timeout": timedelta(0)},
        {"retry_delay": timedelta(seconds=2), "max_retry_delay": timedelta(seconds=1)},
    ):
        with pytest.raises(ValueError, match=r".+"):
            ConnectionOptions(**bad)
    with pytest.raises(ValueError, match="scale"):
        AssetDetails("XRP", 256)


def test_stream_api_misuse_raises() -> None:
    client, _ = make_pair()
    stream_id = client.open_stream()
    assert stream_id == 1
    assert client.open_stream() == 3
    client.set_receive_max(stream_id, 10)
    with pytest.raises(ConnectionUsageError):
        client.set_receive_max(stream_id, 9)
    with pytest.raises(ConnectionUsageError):
        client.set_send_max(stream_id, -1)
    with pytest.raises(ConnectionUsageError):
        client.stream(2)
    client.close_stream(3)
    with pytest.raises(ConnectionUsageError):
        client.set_send_max(3, 1)
    for _ in range(8):
        client.open_stream()
    with pytest.raises(ConnectionUsageError):
        client.open_stream()
    client.close()
    with pytest.raises(ConnectionUsageError):
        client.open_stream()
