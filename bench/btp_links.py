"""Prepares per second over one BTP link, Python client and Python server on loopback, each direction.

    .venv/bin/python -m bench.btp_links [--count 1000]

Echo Prepares (the Fulfill carries the preimage from the Prepare's data), 1 and 50 in flight, every one
checked. Prints a Markdown table; `python -m bench.run` (group `btp`) puts the medians of its runs in
docs/benchmarks.md. The tests (tests/stream/aio/test_btp_pair.py) check the same exchange for correctness
only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stream import ilp
from stream.aio.btp_client import BtpClient
from stream.aio.btp_server import BtpServer

SERVER_ADDRESS = "private.bench"
ASSET = ("XRP", 9)
IN_FLIGHT = (1, 50)
Send = Callable[[ilp.Prepare], Awaitable[ilp.Fulfill | ilp.Reject]]


def prepare(destination: str) -> ilp.Prepare:
    preimage = secrets.token_bytes(32)
    return ilp.Prepare(
        amount=1,
        expires_at=(datetime.now(UTC) + timedelta(seconds=30)).replace(microsecond=0),
        execution_condition=hashlib.sha256(preimage).digest(),
        destination=destination,
        data=preimage,
    )


async def echo(incoming: ilp.Prepare) -> ilp.Fulfill | ilp.Reject:
    return ilp.Fulfill(incoming.data[:32], incoming.data)


async def rate(send: Send, destination: str, count: int, in_flight: int) -> float:
    """Prepares per second for `count` echo round trips, `in_flight` at a time; all must be fulfilled."""
    prepares = [prepare(destination) for _ in range(count)]
    pending = iter(prepares)
    fulfilled = 0

    async def worker() -> None:
        nonlocal fulfilled
        for each in pending:
            reply = await send(each)
            fulfilled += isinstance(reply, ilp.Fulfill) and reply.fulfillment == each.data[:32]

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(in_flight):
            group.create_task(worker())
    elapsed = time.perf_counter() - started
    if fulfilled != count:
        raise RuntimeError(f"only {fulfilled} of {count} Prepares were fulfilled")
    return count / elapsed


@dataclass(frozen=True)
class LinkRate:
    direction: str
    in_flight: int
    prepares_per_second: float


async def link_rates(count: int, runs: int = 1) -> list[LinkRate]:
    """Each direction at each of IN_FLIGHT: the median over `runs` runs of `count` echo round trips, on one
    link (one server, one client) for all of them."""
    rates: list[LinkRate] = []
    async with BtpServer(SERVER_ADDRESS, ASSET, port=0) as server:
        server.set_handler(echo)
        async with BtpClient(server.url("alice", "secret-a")) as client:
            client.set_handler(echo)
            for label, send, destination in (
                ("python client -> python server", client.send, f"{SERVER_ADDRESS}.local"),
                ("python server -> python client", server.send, f"{SERVER_ADDRESS}.alice"),
            ):
                for in_flight in IN_FLIGHT:
                    measured = sorted([await rate(send, destination, count, in_flight) for _ in range(runs)])
                    rates.append(LinkRate(label, in_flight, measured[len(measured) // 2]))
    return rates


async def main(count: int) -> None:
    print("| direction | in flight | Prepares/s |")
    print("|---|---|---|")
    for row in await link_rates(count):
        print(f"| {row.direction} | {row.in_flight} | {row.prepares_per_second:,.0f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    asyncio.run(main(parser.parse_args().count))
