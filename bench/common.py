"""Helpers shared by the benchmarks: CPU time of a process, statistics, our server's API."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

ADMIN = "bench-admin"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads) from /proc/<pid>/stat, in seconds."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class CpuMeter:
    """CPU seconds a process used between `start()` and `stop()`."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._start = 0.0
        self.seconds = 0.0

    def start(self) -> None:
        self._start = cpu_seconds(self.pid)

    def stop(self) -> float:
        self.seconds = cpu_seconds(self.pid) - self._start
        return self.seconds


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) of `values`."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Stopwatch:
    started: float = 0.0

    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.elapsed = time.perf_counter() - self.started

    elapsed: float = 0.0


async def create_pointers(
    base_url: str,
    count: int,
    amount: int,
    *,
    asset_code: str = "XRP",
    asset_scale: int = 9,
    concurrency: int = 10,
    admin: str = ADMIN,
) -> list[str]:
    """`count` pointers of `amount` per day (one cycle) on our server; their SPSP URLs."""
    body: dict[str, Any] = {
        "amount": str(amount),
        "assetCode": asset_code,
        "assetScale": asset_scale,
        "interval": "P1D",
        "cycles": 1,
        "cap": False,
    }
    headers = {"Authorization": f"Bearer {admin}"}
    urls: list[str] = []
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            async with session.post(f"{base_url}/", json=body, headers=headers) as response:
                if response.status != 201:
                    raise RuntimeError(f"creating a pointer: {response.status} {await response.text()}")
                urls.append(f"{base_url}/{(await response.json())['token']}")

        remaining = count
        while remaining:
            batch = min(concurrency, remaining)
            await _gather(*(one() for _ in range(batch)))
            remaining -= batch
    return urls


async def pointer_balance(url: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        body = await response.json(content_type=None)
        return dict(body["pull"]["balance"])


async def _gather(*work: Any) -> None:
    import asyncio

    await asyncio.gather(*work)
