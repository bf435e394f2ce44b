"""Billing day, small: our collector (`spsp_pull.collector.collect`, every pull over one BTP connection)
against our server's embedded endpoint, beside the JS pullers (bench/js/pullers.js: ilp-protocol-stream
2.7.1, one BTP account per pull as ilp-protocol-spsp does) against the JS direct-BTP pull server. Same number
of one-packet pulls, at most the same number at once (the JS pullers in waves that start together), alternated
runs; completed pulls per second and server CPU per completed pull.

    python -m bench.collect [pulls] [concurrency] [runs]
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from bench.common import CpuMeter, create_pointers
from bench.pulls import Run, Series, alternate, js_pull_batch, start_ours
from harness.js_stack import JsDirectBtpServer, btp_url, unique_name
from spsp_pull.collector import Kind, PointerItem, SqlState, collect


async def collector_run(
    pid: int, server_url: str, btp_port: int, pulls: int, amount: int, concurrency: int, state_dir: Path
) -> Run:
    """One collection of `pulls` fresh pointers (created first, not timed); server `pid` measured."""
    urls = await create_pointers(server_url, pulls, amount)
    state_url = f"sqlite+aiosqlite:///{state_dir / unique_name('collect')}.sqlite3"
    async with SqlState.open(state_url) as state:
        meter = CpuMeter(pid)
        meter.start()
        started = time.perf_counter()
        report = await collect(
            [PointerItem(url) for url in urls],
            btp_url=btp_url(btp_port, unique_name("shop")),
            state=state,
            concurrency=concurrency,
        )
        wall = time.perf_counter() - started
        meter.stop()
    ok = sum(1 for outcome in report.outcomes if outcome.kind is Kind.PULLED and outcome.amount == amount)
    errors = sorted(
        {f"{o.kind.value} {o.reason}: {o.detail}" for o in report.outcomes if o.kind != Kind.PULLED}
    )
    return Run(ok, len(urls), wall, ok, meter.seconds, errors)


async def js_waves(pid: int, url: str, btp_port: int, pulls: int, amount: int, concurrency: int) -> Run:
    """`pulls` JS pulls of `url` in waves of `concurrency` started at once (bench/js/pullers.js), as one run:
    the waves' wall times (each timed inside the JS process) and server CPU added up."""
    waves = [
        await js_pull_batch(pid, [url] * min(concurrency, pulls - done), btp_port, amount)
        for done in range(0, pulls, concurrency)
    ]
    return Run(
        sum(w.ok for w in waves),
        sum(w.pulls for w in waves),
        sum(w.wall_s for w in waves),
        sum(w.packets for w in waves),
        sum(w.server_cpu_s for w in waves),
        sorted({e for w in waves for e in w.errors}),
    )


async def collector_vs_js(
    runs: int, pulls: int = 300, concurrency: int = 50, amount: int = 1000, warmup: int = 1
) -> dict[str, Series]:
    """`pulls` one-packet pulls of `amount`, `concurrency` at once: ours ("ours") and the JS pair ("js")."""
    with tempfile.TemporaryDirectory() as tmp:
        ours = await start_ours(Path(tmp) / "server", embedded_btp=True)
        try:
            async with JsDirectBtpServer() as js:
                assert js.pid is not None and ours.btp_port is not None
                js_pid, our_btp = js.pid, ours.btp_port

                async def measure_ours() -> Run:
                    return await collector_run(
                        ours.pid, ours.url, our_btp, pulls, amount, concurrency, Path(tmp)
                    )

                async def measure_js() -> Run:
                    return await js_waves(
                        js_pid, js.pointer_url(amount), js.btp_port, pulls, amount, concurrency
                    )

                return await alternate(runs, warmup, {"ours": measure_ours, "js": measure_js})
        finally:
            await ours.stop()


if __name__ == "__main__":  # pragma: no cover - manual use
    pulls, concurrency, runs = (int(a) for a in (sys.argv[1:] + ["300", "50", "3"][len(sys.argv) - 1 :])[:3])
    result = asyncio.run(collector_vs_js(runs, pulls, concurrency))
    print(json.dumps({label: series.summary() for label, series in result.items()}, indent=1))
