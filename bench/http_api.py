"""Pointer creations and SPSP queries per second against a real server process, on SQLite or PostgreSQL, and
the same SPSP query load against the JS pull server.

    python -m bench.http_api --backend sqlite --concurrency 50 --creates 2000 --queries 20000
    python -m bench.http_api --backend js --queries 20000
    python -m bench.http_api --backend ceiling-asyncio --queries 20000

Load comes from `bench.loadgen` (keep-alive connections, one request in flight on each), the same for every
server; the server's CPU time is read from /proc around each phase. The ceiling servers
(`bench.ceiling_server`) answer a constant SPSP body: what this load generator can get out of a bare
asyncio.Protocol, and out of aiohttp itself, on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg

from bench import loadgen
from bench.common import ADMIN, CpuMeter, create_pointers, median, percentile
from harness.js_stack import JsConnector, JsPullServer
from harness.server_process import ServerProcess

AGREEMENT = {
    "amount": "1000",
    "assetCode": "USD",
    "assetScale": 2,
    "interval": "P1M",
    "cycles": 12,
    "cap": False,
}
POSTGRES = os.environ.get("SPSP_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
SPSP_ACCEPT = {"Accept": "application/spsp4+json"}
QUERY_POINTERS = 1000
CEILINGS = ("asyncio", "aiohttp")
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class HttpResult:
    server: str  # "sqlite", "postgres" (ours), "js", "ceiling-asyncio" or "ceiling-aiohttp"
    concurrency: int
    creates: int
    creates_per_s: float
    queries: int
    queries_per_s: float
    query_p50_ms: float
    query_p99_ms: float
    server_cpu_ms_per_query: float


@contextlib.asynccontextmanager
async def postgres_database() -> AsyncIterator[tuple[str, str]]:
    """A fresh PostgreSQL database, dropped afterwards: (asyncpg DSN, SQLAlchemy URL)."""
    name = "bench_" + secrets.token_hex(4)
    conn = await asyncpg.connect(POSTGRES)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    base = POSTGRES.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}", f"{base.replace('postgresql://', 'postgresql+asyncpg://')}/{name}"
    finally:
        conn = await asyncpg.connect(POSTGRES)
        await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await conn.close()


async def query_load(
    port: int, paths: list[str], pid: int | None, total: int, concurrency: int
) -> tuple[loadgen.LoadResult, float]:
    """Warm up, then `total` SPSP queries; the result and the server's CPU ms per query."""
    await loadgen.run("127.0.0.1", port, paths, total=min(2000, total), concurrency=concurrency)
    meter = CpuMeter(pid) if pid is not None else None
    if meter is not None:
        meter.start()
    result = await loadgen.run(
        "127.0.0.1", port, paths, total=total, concurrency=concurrency, headers=SPSP_ACCEPT
    )
    cpu_ms = 1000 * meter.stop() / total if meter is not None else float("nan")
    if result.statuses.get(200) != total:
        raise RuntimeError(f"SPSP queries answered {result.statuses}")
    return result, cpu_ms


async def bench_ours(backend: str, concurrency: int, creates: int, queries: int) -> HttpResult:
    env = {"SPSP_AUTH_TOKEN": ADMIN, "SPSP_LOG_LEVEL": "WARNING"}
    async with contextlib.AsyncExitStack() as stack:
        if backend == "postgres":
            _, env["SPSP_DATABASE_URL"] = await stack.enter_async_context(postgres_database())
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        server = await stack.enter_async_context(ServerProcess(data_dir, env=env))
        body = json.dumps(AGREEMENT).encode()
        headers = {"Authorization": f"Bearer {ADMIN}", "Content-Type": "application/json"}
        created = await loadgen.run(
            "127.0.0.1",
            server.port,
            ["/"],
            total=creates,
            concurrency=concurrency,
            headers=headers,
            method="POST",
            body=body,
        )
        if created.statuses.get(201) != creates:
            raise RuntimeError(f"pointer creations answered {created.statuses}")
        urls = await create_pointers(server.url, QUERY_POINTERS, 1000, asset_code="USD", asset_scale=2)
        paths = ["/" + url.rsplit("/", 1)[1] for url in urls]
        result, cpu_ms = await query_load(server.port, paths, server.pid, queries, concurrency)
    return _result(backend, concurrency, creates, created.per_second, result, cpu_ms)


async def bench_js(concurrency: int, queries: int) -> HttpResult:
    """The JS pull server's SPSP endpoint (GET /pull/<amount>), on its connector."""
    async with JsConnector() as connector, JsPullServer(connector) as js:
        result, cpu_ms = await query_load(js.spsp_port, ["/pull/1000"], js.pid, queries, concurrency)
    return _result("js", concurrency, 0, 0.0, result, cpu_ms)


@contextlib.asynccontextmanager
async def ceiling_server(kind: str) -> AsyncIterator[tuple[int, int]]:
    """A `bench.ceiling_server` process: (port, pid); terminated by PID afterwards, killed if it lingers."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.ceiling_server",
        kind,
        "--port",
        "0",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        if not line.strip():
            raise RuntimeError(f"ceiling server {kind} exited {await process.wait()} before listening")
        yield int(line), process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


async def bench_ceiling(kind: str, concurrency: int, queries: int) -> HttpResult:
    """The same query load against a constant-answer server (`bench.ceiling_server`)."""
    paths = ["/" + secrets.token_urlsafe(16) for _ in range(QUERY_POINTERS)]
    async with ceiling_server(kind) as (port, pid):
        result, cpu_ms = await query_load(port, paths, pid, queries, concurrency)
    return _result(f"ceiling-{kind}", concurrency, 0, 0.0, result, cpu_ms)


def _result(
    server: str, concurrency: int, creates: int, creates_per_s: float, queries: loadgen.LoadResult, cpu: float
) -> HttpResult:
    return HttpResult(
        server,
        concurrency,
        creates,
        round(creates_per_s, 1),
        queries.requests,
        round(queries.per_second, 1),
        round(1000 * median(queries.latencies), 2),
        round(1000 * percentile(queries.latencies, 0.99), 2),
        round(cpu, 3),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    ceilings = [f"ceiling-{kind}" for kind in CEILINGS]
    parser.add_argument("--backend", choices=["sqlite", "postgres", "js", *ceilings], default="sqlite")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--creates", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=20000)
    args = parser.parse_args()
    if args.backend == "js":
        result = asyncio.run(bench_js(args.concurrency, args.queries))
    elif args.backend in ceilings:
        result = asyncio.run(
            bench_ceiling(args.backend.removeprefix("ceiling-"), args.concurrency, args.queries)
        )
    else:
        result = asyncio.run(bench_ours(args.backend, args.concurrency, args.creates, args.queries))
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
