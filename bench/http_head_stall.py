"""How long hostile request heads stall a real server: 40 pipelined 8 KiB heads, each with a long run of
spaces inside one header value, sent on one connection, while another connection asks for /healthz.

    python -m bench.http_head_stall                  # 40 heads of 8 KiB, 3 rounds
    python -m bench.http_head_stall --heads 40 --rounds 5

Reports, per round: how long /healthz took while the heads were being read (the event loop's stall as a
client sees it), how long until the hostile connection had all its answers (or was closed), and the server
CPU time the round cost. The server is `spsp-pull serve` in its own process, on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import ADMIN, CpuMeter, median
from harness.server_process import ServerProcess

HEAD_SIZE = 8 * 1024


def hostile_head(size: int = HEAD_SIZE) -> bytes:
    """A query head of exactly `size` bytes whose one extra header value is 'x', spaces, 'x'."""
    start = b"GET /no-such-pointer HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: x"
    end = b"x\r\n\r\n"
    return start + b" " * (size - len(start) - len(end)) + end


@dataclass(frozen=True)
class Round:
    healthz_ms: float
    hostile_answered_ms: float
    server_cpu_ms: float


async def healthz_ms(port: int) -> float:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        started = time.perf_counter()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await reader.read()  # the answer, up to the server's close
        return (time.perf_counter() - started) * 1000
    finally:
        writer.close()


async def read_statuses(reader: asyncio.StreamReader, count: int) -> int:
    """Status lines read off the connection (each answer is small and has a Content-Length)."""
    answered = 0
    while answered < count:
        status = await reader.readline()
        if not status:
            break
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        await reader.readexactly(length)
        answered += 1
    return answered


async def attack_round(server: ServerProcess, heads: int) -> Round:
    cpu = CpuMeter(server.pid)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        cpu.start()
        started = time.perf_counter()
        writer.write(hostile_head() * heads)
        await writer.drain()
        healthz = await healthz_ms(server.port)
        await asyncio.wait_for(read_statuses(reader, heads), 120)
        answered = (time.perf_counter() - started) * 1000
        return Round(healthz, answered, cpu.stop() * 1000)
    finally:
        writer.close()


async def main(heads: int, rounds: int) -> list[Round]:
    with tempfile.TemporaryDirectory() as data:
        env = {"SPSP_AUTH_TOKEN": ADMIN, "SPSP_LOG_LEVEL": "WARNING"}
        async with ServerProcess(Path(data), env=env) as server:
            quiet = median([await healthz_ms(server.port) for _ in range(5)])
            print(f"/healthz alone: {quiet:.1f} ms")
            results = []
            for n in range(rounds):
                result = await attack_round(server, heads)
                results.append(result)
                print(
                    f"round {n + 1}: /healthz {result.healthz_ms:.1f} ms, {heads} hostile heads answered in "
                    f"{result.hostile_answered_ms:.1f} ms, server CPU {result.server_cpu_ms:.0f} ms"
                )
            healthz = median([r.healthz_ms for r in results])
            answered = median([r.hostile_answered_ms for r in results])
            cpu = median([r.server_cpu_ms for r in results])
            print(
                f"median of {rounds}: /healthz {healthz:.1f} ms, hostile heads {answered:.1f} ms, "
                f"server CPU {cpu:.0f} ms"
            )
            return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--heads", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.heads, args.rounds))
