"""Billing day at scale, on PostgreSQL: many pointers all due at the same cycle boundary, collected by our
collector (`spsp_pull.collector.collect`, one BTP connection, bounded concurrency) through the real protocol
(SPSP query over HTTP, a STREAM pull over BTP, one per pointer).

1. One server instance (embedded BTP endpoint): time to collect them all, server and collector CPU per pull,
   p50/p99 pull latency (query, pull and records), database size before and after.
2. Two server instances on the same database behind one connector (moneyd), each with its own uplink
   account; the pointers' URLs alternate between the two instances' HTTP ports (as a load balancer would
   spread them): how the pulls split between them, and the same checks.

Both end with every pointer's total exact (in the database and in the collector's report) and the ledger
audit clean. The pointers are written straight into the database (one INSERT … SELECT): their rows and their
first agreement version, as the API writes them; everything after that goes through the protocol.

    python -m bench.billing_day [pointers] [two-instance pointers] [concurrency]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.common import CpuMeter, median, percentile
from bench.http_api import postgres_database
from bench.pulls import start_ours
from harness.js_stack import JsConnector, btp_url, unique_name
from harness.server_process import ServerProcess
from spsp_pull.collector import Kind, PointerItem, Report, SqlState, collect

AMOUNT = 1000


async def insert_due_pointers(dsn: str, count: int) -> list[str]:
    """`count` pointers of AMOUNT a month for 12 months, all starting now (due in cycle 1); their tokens."""
    connection = await asyncpg.connect(dsn)
    try:
        account = await connection.fetchval("SELECT id FROM accounts ORDER BY id LIMIT 1")
        before = await connection.fetchval("SELECT coalesce(max(id), 0) FROM pointers")
        now = datetime.now(UTC)
        async with connection.transaction():
            tokens = await connection.fetch(
                """
                INSERT INTO pointers (token, tag, account_id, origin, created_at, amount, interval, cycles,
                    cap, start, anchor, base_cycle, carry, asset_code, asset_scale, version, pulled_total,
                    reserved_total, used_since_anchor, used_in_cycle, usage_cycle)
                SELECT 'bd' || md5(random()::text || g), md5(g::text || random()::text), $1, 'online', $2,
                    $3, 'P1M', 12, false, $2, $2, 1, 0, 'XRP', 9, 1, 0, 0, 0, 0, 0
                FROM generate_series(1, $4) AS g
                RETURNING token
                """,
                account,
                now,
                AMOUNT,
                count,
            )
            await connection.execute(
                """
                INSERT INTO pointer_versions (pointer_id, number, created_at, reason, amount, interval,
                    cycles, cap, start, anchor, base_cycle, carry)
                SELECT id, 1, created_at, 'created', amount, interval, cycles, cap, start, anchor, base_cycle,
                    carry
                FROM pointers WHERE id > $1
                """,
                before,
            )
        await connection.execute("ANALYZE")
        return [row["token"] for row in tokens]
    finally:
        await connection.close()


async def database_facts(dsn: str) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        size = await connection.fetchval("SELECT pg_database_size(current_database())")
        tables = await connection.fetch(
            "SELECT relname, pg_total_relation_size(relid) AS bytes FROM pg_catalog.pg_statio_user_tables "
            "ORDER BY bytes DESC LIMIT 6"
        )
        exact = await connection.fetchrow(
            "SELECT count(*) AS pointers, count(*) FILTER (WHERE pulled_total = amount) AS exact, "
            "sum(pulled_total) AS pulled, sum(reserved_total) AS reserved FROM pointers"
        )
        return {
            "database_mb": round(size / 2**20, 1),
            "tables_mb": {row["relname"]: round(row["bytes"] / 2**20, 1) for row in tables},
            "pointers": exact["pointers"],
            "pointers_pulled_exactly": exact["exact"],
            "pulled_total": str(exact["pulled"]),
            "reserved_total": str(exact["reserved"]),
        }
    finally:
        await connection.close()


async def completed_pulls(server: ServerProcess) -> int:
    """`spsp_pulls_total{outcome="complete"}` from the instance's /metrics."""
    async with aiohttp.ClientSession() as http, http.get(f"{server.url}/metrics") as response:
        text = await response.text()
    found = re.findall(r'^spsp_pulls_total\{[^}]*outcome="complete"[^}]*\} ([0-9.e+]+)$', text, re.M)
    return int(sum(float(value) for value in found))


async def run_collection(
    urls: list[str],
    btp: str,
    concurrency: int,
    state_dir: Path,
    servers: list[ServerProcess],
    connector_pid: int | None = None,
) -> dict[str, Any]:
    """Collect `urls`; wall time, CPU per pull of each server (and of the connector, and of this process),
    latency percentiles."""
    meters = [CpuMeter(server.pid) for server in servers]
    connector = CpuMeter(connector_pid) if connector_pid is not None else None
    state_url = f"sqlite+aiosqlite:///{state_dir / unique_name('state')}.sqlite3"
    async with SqlState.open(state_url) as state:
        for meter in meters + ([connector] if connector else []):
            meter.start()
        own_cpu = time.process_time()
        started = time.perf_counter()
        report: Report = await collect(
            [PointerItem(url) for url in urls], btp_url=btp, state=state, concurrency=concurrency
        )
        wall = time.perf_counter() - started
        own_cpu = time.process_time() - own_cpu
        for meter in meters + ([connector] if connector else []):
            meter.stop()
    pulled = [o for o in report.outcomes if o.kind is Kind.PULLED and o.amount == AMOUNT]
    latencies = [o.took.total_seconds() for o in pulled]
    problems = sorted(
        {f"{o.kind.value} {o.reason} {o.detail}"[:160] for o in report.outcomes} - {"pulled None "}
    )
    return {
        "pointers": len(urls),
        "pulled": len(pulled),
        "amount": str(report.amount),
        "seconds": round(wall, 1),
        "pulls_per_s": round(len(pulled) / wall, 1),
        "server_cpu_ms_per_pull": [round(1000 * m.seconds / max(1, len(pulled)), 2) for m in meters],
        "server_cpu_s": [round(m.seconds, 1) for m in meters],
        "collector_cpu_ms_per_pull": round(1000 * own_cpu / max(1, len(pulled)), 2),
        "connector_cpu_ms_per_pull": round(1000 * connector.seconds / max(1, len(pulled)), 2)
        if connector
        else None,
        "latency_p50_ms": round(1000 * median(latencies), 1),
        "latency_p99_ms": round(1000 * percentile(latencies, 0.99), 1),
        "peak_concurrency": report.peak_concurrency,
        "problems": problems[:5],
    }


def server_errors(server: ServerProcess) -> list[str]:
    lines = server.output.decode(errors="replace").splitlines()
    return [line[:300] for line in lines if "Error" in line or "error" in line][:20]


async def audit(server: ServerProcess) -> float:
    started = time.perf_counter()
    await server.assert_audit_clean()
    return round(time.perf_counter() - started, 1)


async def billing_day(pointers: int, two_instance_pointers: int, concurrency: int) -> dict[str, Any]:
    results: dict[str, Any] = {"concurrency": concurrency}
    async with postgres_database() as (dsn, url), contextlib.AsyncExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if pointers:
            one = await start_ours(tmp / "one", embedded_btp=True, SPSP_DATABASE_URL=url)
            stack.push_async_callback(one.stop)
            started = time.perf_counter()
            tokens = await insert_due_pointers(dsn, pointers)
            results["insert_seconds"] = round(time.perf_counter() - started, 1)
            results["before"] = await database_facts(dsn)
            assert one.btp_port is not None
            urls = [f"{one.url}/{token}" for token in tokens]
            results["one_instance"] = await run_collection(
                urls, btp_url(one.btp_port, unique_name("shop")), concurrency, tmp, [one]
            )
            results["one_instance"]["server_errors"] = server_errors(one)
            results["one_instance"]["audit_seconds"] = await audit(one)
            results["after_one"] = await database_facts(dsn)
            await one.stop()
        if two_instance_pointers:
            connector = await stack.enter_async_context(JsConnector(disable_rate_limit=True))
            instances = []
            for name in ("a", "b"):
                instance = await start_ours(
                    tmp / name, SPSP_DATABASE_URL=url, SPSP_ILP_UPLINK=connector.btp_url(unique_name("srv"))
                )
                stack.push_async_callback(instance.stop)
                instances.append(instance)
            tokens = await insert_due_pointers(dsn, two_instance_pointers)
            urls = [f"{instances[n % 2].url}/{token}" for n, token in enumerate(tokens)]
            run = await run_collection(
                urls, connector.btp_url(unique_name("shop")), concurrency, tmp, instances, connector.pid
            )
            run["completed_per_instance"] = [await completed_pulls(s) for s in instances]
            run["audit_seconds"] = await audit(instances[0])
            results["two_instances"] = run
            results["after_two"] = await database_facts(dsn)
    return results


if __name__ == "__main__":  # pragma: no cover - manual use
    numbers = [int(a) for a in sys.argv[1:4]]
    pointers, two, concurrency = (numbers + [100_000, 10_000, 100][len(numbers) :])[:3]
    print(json.dumps(asyncio.run(billing_day(pointers, two, concurrency)), indent=1))
