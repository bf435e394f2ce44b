"""Scale: SPSP query latency with few and with many pointers in PostgreSQL, and the cost of a balance far into
a short-interval agreement.

The pointers are bulk-inserted straight into the `pointers` table (COPY) of a server that created the schema,
then random tokens are queried over HTTP with the lean load generator.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from bench import loadgen
from bench.common import ADMIN, median, percentile
from bench.http_api import postgres_database
from harness.server_process import ServerProcess
from spsp_pull.domain.agreement import Terms, Usage, Version, balance
from spsp_pull.domain.duration import parse_interval

COPY_BATCH = 50_000


@dataclass(frozen=True)
class LatencyResult:
    pointers: int
    queries: int
    per_second: float
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class BalanceResult:
    label: str
    cycles_elapsed: int
    micros: float  # median per call


def _rows(account_id: int, count: int, now: datetime) -> tuple[list[tuple[Any, ...]], list[str]]:
    tokens: list[str] = []
    rows: list[tuple[Any, ...]] = []
    for _ in range(count):
        token = secrets.token_urlsafe(16)
        tokens.append(token)
        rows.append(
            (
                token,
                secrets.token_urlsafe(12),
                account_id,
                "online",
                now,
                Decimal(1000),
                "P1M",
                12,
                False,
                now,
                now,
                1,
                Decimal(0),
                "USD",
                2,
                1,
                Decimal(0),
                Decimal(0),
                Decimal(0),
                Decimal(0),
                0,
            )
        )
    return rows, tokens


COLUMNS = (
    "token",
    "tag",
    "account_id",
    "origin",
    "created_at",
    "amount",
    "interval",
    "cycles",
    "cap",
    "start",
    "anchor",
    "base_cycle",
    "carry",
    "asset_code",
    "asset_scale",
    "version",
    "pulled_total",
    "reserved_total",
    "used_since_anchor",
    "used_in_cycle",
    "usage_cycle",
)


async def insert_pointers(dsn: str, count: int) -> list[str]:
    """`count` pointers copied into the table; their tokens."""
    conn = await asyncpg.connect(dsn)
    try:
        account_id = await conn.fetchval("SELECT id FROM accounts ORDER BY id LIMIT 1")
        now = datetime.now(UTC)
        tokens: list[str] = []
        done = 0
        while done < count:
            batch = min(COPY_BATCH, count - done)
            rows, batch_tokens = _rows(account_id, batch, now)
            await conn.copy_records_to_table("pointers", records=rows, columns=COLUMNS)
            tokens += batch_tokens
            done += batch
        await conn.execute("ANALYZE pointers")
        return tokens
    finally:
        await conn.close()


async def query_latency(
    server: ServerProcess, tokens: list[str], total: int, pointers: int, concurrency: int
) -> LatencyResult:
    """Random tokens (each asked once, in random order) at `concurrency` connections."""
    rng = secrets.SystemRandom()
    paths = [f"/{token}" for token in rng.choices(tokens, k=total)]
    headers = {"Accept": "application/spsp4+json"}
    await loadgen.run("127.0.0.1", server.port, paths[:500], total=500, concurrency=concurrency)
    result = await loadgen.run(
        "127.0.0.1", server.port, paths, total=len(paths), concurrency=concurrency, headers=headers
    )
    if result.statuses.get(200) != len(paths):
        raise RuntimeError(f"unexpected answers: {result.statuses}")
    return LatencyResult(
        pointers,
        len(paths),
        round(result.per_second, 1),
        round(1000 * median(result.latencies), 2),
        round(1000 * percentile(result.latencies, 0.99), 2),
    )


async def pointer_scale(
    small: int = 1000, large: int = 1_000_000, queries: int = 20_000, concurrency: int = 50
) -> list[LatencyResult]:
    """Query latency with `small` pointers, then with `large` (same server, same database)."""
    async with postgres_database() as (dsn, url):
        with tempfile.TemporaryDirectory() as tmp:
            env = {"SPSP_AUTH_TOKEN": ADMIN, "SPSP_LOG_LEVEL": "WARNING", "SPSP_DATABASE_URL": url}
            async with ServerProcess(Path(tmp), env=env) as server:
                tokens = await insert_pointers(dsn, small)
                results = [await query_latency(server, tokens, queries, small, concurrency)]
                tokens += await insert_pointers(dsn, large - small)
                results.append(await query_latency(server, tokens, queries, large, concurrency))
                return results


def balance_cost(calls: int = 2000) -> list[BalanceResult]:
    """`balance()` one second into a PT1S agreement and ten years into one: the time must not grow with the
    number of elapsed cycles."""
    now = datetime.now(UTC)
    usage = Usage(pulled_total=0, used_since_anchor=0, used_in_cycle=0, cycle=0)
    results = []
    for label, elapsed in (("1 second in", timedelta(seconds=1)), ("10 years in", timedelta(days=3653))):
        start = now - elapsed
        terms = Terms(
            amount=1000,
            asset_code="USD",
            asset_scale=2,
            interval=parse_interval("PT1S"),
            cycles=10**12,
            cap=False,
            start=start,
            expiry=None,
        )
        version = Version.first(terms)
        current = balance(version, usage, now, None)
        timings = []
        for _ in range(calls):
            started = time.perf_counter()
            balance(version, usage, now, None)
            timings.append(time.perf_counter() - started)
        results.append(BalanceResult(label, current.cycle, round(1e6 * median(timings), 1)))
    return results


if __name__ == "__main__":  # pragma: no cover - manual use
    import json
    import sys
    from dataclasses import asdict

    large = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(json.dumps([asdict(r) for r in balance_cost()]))
    print(json.dumps([asdict(r) for r in asyncio.run(pointer_scale(large=large))]))
