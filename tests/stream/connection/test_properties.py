"""Property: whatever the limits, packet cap, window, reply order and faults, a pull settles consistently."""

import random
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.connection import ConnectionOptions, MoneySent
from stream.ilp import Fulfill
from tests.stream.connection.harness import Connector, Network, Puller, PullServer, make_pair

FATAL = ("F02", "R00")
FAULTS = st.lists(st.sampled_from([None, None, None, None, "T04", "T05", "T00", "F99", *FATAL]), max_size=25)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pull=st.one_of(st.integers(0, 20_000), st.just(2**64 - 1)),
    limit=st.integers(0, 20_000),
    step=st.one_of(st.none(), st.integers(200, 8_000)),
    cap=st.one_of(st.none(), st.integers(60, 5_000)),
    window=st.integers(1, 8),
    faults=FAULTS,
    seed=st.integers(0, 2**32 - 1),
    hold_back=st.sampled_from([0.0, 0.4]),
)
def test_pull_settles_consistently(
    pull: int,
    limit: int,
    step: int | None,
    cap: int | None,
    window: int,
    faults: list[str | None],
    seed: int,
    hold_back: float,
) -> None:
    # Back-off capped at 1 s: even 25 consecutive T errors stay well inside the 60 s idle timeout.
    client, server = make_pair(
        client_options=ConnectionOptions(max_retry_delay=timedelta(seconds=1)),
        server_options=ConnectionOptions(max_in_flight=window, max_retry_delay=timedelta(seconds=1)),
    )
    puller = Puller(client, pull)
    server_app = PullServer(limit, step)
    connector = Connector(max_packet_amount=cap, faults=list(faults))
    net = Network(
        client,
        server,
        connector=connector,
        client_app=puller,
        server_app=server_app,
        rng=random.Random(seed),
        hold_back=hold_back,
    )
    net.run()

    assert client.is_closed and server.is_closed
    received = client.stream(1).total_received
    if 1 not in server.stream_ids:
        assert any(fault in FATAL for fault in faults)
        assert received == 0
        return
    sent = server.stream(1).total_sent
    assert sent == received
    assert sent <= server.stream(1).send_max <= min(limit, pull)
    money = [s for s in net.packets("server") if s.out.prepare.amount]
    assert sent == sum(s.out.prepare.amount for s in money if isinstance(s.reply, Fulfill))
    assert sent == sum(e.amount for e in net.events["server"] if isinstance(e, MoneySent))
    for record in money:
        if record.max_packet_known is not None:
            assert record.max_packet_known == cap
            assert record.out.prepare.amount <= record.max_packet_known
    used = len(faults) - len(connector.faults)
    if not any(fault in FATAL for fault in faults[:used]):
        assert sent == min(limit, pull)
