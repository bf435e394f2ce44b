"""When a delivery wakes the pull's send loop (`delivery_needs_turn`, run once per fulfilled packet): only
when it has something to decide. A missed wake-up stalls a pull until a timer; a needless one costs CPU on
every packet."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import pytest

from spsp_pull.ilp.pull_session import TERMS_CHECK_PACKETS, delivery_needs_turn


@dataclass(frozen=True)
class After:
    """What the stream and the pull show after a delivery."""

    exhausted: bool = False
    packet: int | None = 100
    packet_seen: int | None = 100
    packets_since_check: int = 0
    unused: int = 1_000
    low_water: int = 500
    in_flight: int = 1


CALM = After()  # plenty reserved, one in flight, nothing changed: sleep on


@pytest.mark.parametrize(
    ("after", "turn"),
    [
        (CALM, False),
        (replace(CALM, exhausted=True), True),  # it may end the stream now
        (replace(CALM, packet=None), True),  # no packet size known: chunks cannot be sized
        (replace(CALM, packet=None, packet_seen=None), True),
        (replace(CALM, packet_seen=None), True),  # never planned with one
        (replace(CALM, packet=50), True),  # the path's packet size fell since the loop planned
        (replace(CALM, packets_since_check=TERMS_CHECK_PACKETS - 1), False),
        (replace(CALM, packets_since_check=TERMS_CHECK_PACKETS), True),  # time to read the terms again
        (replace(CALM, packets_since_check=TERMS_CHECK_PACKETS + 1), True),
        (replace(CALM, unused=501), False),
        (replace(CALM, unused=500), False),
        (replace(CALM, unused=499), True),  # below the low-water mark: reserve the next chunk
        (replace(CALM, unused=0), True),
        (replace(CALM, in_flight=0), True),  # nothing in flight: the loop must send or end
        (replace(CALM, in_flight=2), False),
    ],
)
def test_a_delivery_wakes_the_send_loop_only_when_it_has_something_to_decide(
    after: After, turn: bool
) -> None:
    assert delivery_needs_turn(**asdict(after)) is turn
