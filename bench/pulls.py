"""Pull benchmarks: our server against the JS pull servers, with the same JS puller; and our own puller.

Every scenario runs both servers in the same session and alternates their runs, so the medians compare the
two under the same background load. Our server is a real `spsp-pull serve` process; the CPU figures are its
utime+stime (and the JS server's) from /proc, read before and after each run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from bench.common import ADMIN, CpuMeter, create_pointers, median
from bench.profile import spy, summarise
from harness.js_stack import (
    JS_DIR,
    JsConnector,
    JsDirectBtpServer,
    JsPullServer,
    NodeProcess,
    btp_url,
    run_js_pullers,
    select_runtime,
    unique_name,
)
from harness.server_process import ServerProcess
from spsp_pull.payee import pull as python_pull

BENCH_JS = Path(__file__).resolve().parent / "js" / "pullers.js"


@dataclass
class Run:
    """One measured run: a single large pull or one batch of concurrent pulls."""

    ok: int
    pulls: int
    wall_s: float
    packets: int  # Prepares that reached the puller(s)
    server_cpu_s: float
    errors: list[str] = field(default_factory=list)

    @property
    def packets_per_s(self) -> float:
        return self.packets / self.wall_s

    @property
    def pulls_per_s(self) -> float:
        return self.ok / self.wall_s

    @property
    def cpu_ms_per_packet(self) -> float:
        return 1000 * self.server_cpu_s / max(1, self.packets)

    @property
    def cpu_ms_per_pull(self) -> float:
        """Server CPU per completed pull."""
        return 1000 * self.server_cpu_s / max(1, self.ok)


@dataclass
class Series:
    """The runs of one server in one scenario."""

    label: str
    runs: list[Run] = field(default_factory=list)

    def summary(self) -> dict[str, float | int | str | list[str]]:
        runs = self.runs
        return {
            "label": self.label,
            "runs": len(runs),
            "ok": sum(r.ok for r in runs),
            "pulls": sum(r.pulls for r in runs),
            "wall_ms": round(1000 * median([r.wall_s for r in runs]), 1),
            "wall_ms_min": round(1000 * min(r.wall_s for r in runs), 1),
            "wall_ms_max": round(1000 * max(r.wall_s for r in runs), 1),
            "packets": int(median([r.packets for r in runs])),
            "packets_per_s": round(median([r.packets_per_s for r in runs]), 1),
            "pulls_per_s": round(median([r.pulls_per_s for r in runs]), 1),
            "cpu_ms_per_packet": round(median([r.cpu_ms_per_packet for r in runs]), 3),
            "cpu_ms_per_pull": round(median([r.cpu_ms_per_pull for r in runs]), 3),
            "cpu_ms_per_pull_min": round(min(r.cpu_ms_per_pull for r in runs), 3),
            "cpu_ms_per_pull_max": round(max(r.cpu_ms_per_pull for r in runs), 3),
            "pulls_per_s_min": round(min(r.pulls_per_s for r in runs), 1),
            "pulls_per_s_max": round(max(r.pulls_per_s for r in runs), 1),
            "server_cpu_s": round(median([r.server_cpu_s for r in runs]), 3),
            "errors": sorted({e for r in runs for e in r.errors})[:5],
        }


Measure = Callable[[], Awaitable[Run]]


async def alternate(runs: int, warmup: int, measures: dict[str, Measure]) -> dict[str, Series]:
    """Run every measure `warmup` times unrecorded, then `runs` times each, interleaved."""
    series = {label: Series(label) for label in measures}
    for _ in range(warmup):
        for measure in measures.values():
            await measure()
    for _ in range(runs):
        for label, measure in measures.items():
            series[label].runs.append(await measure())
    return series


# --- profiles ----------------------------------------------------------------------------------------------

PROFILE_DIR: Path | None = None
"""When set, our server is sampled with py-spy during each scenario; the profiles are written here."""


@contextlib.asynccontextmanager
async def profiling(pid: int, name: str) -> AsyncIterator[None]:
    if PROFILE_DIR is None:
        yield
        return
    PROFILE_DIR.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (once per scenario)
    out = PROFILE_DIR / f"{name}.collapsed"
    async with spy(pid, out, gil=True):
        yield
    (PROFILE_DIR / f"{name}.txt").write_text(summarise(out, 40) + "\n")


# --- servers ---------------------------------------------------------------------------------------------


def our_env(**extra: str) -> dict[str, str]:
    return {"SPSP_AUTH_TOKEN": ADMIN, "SPSP_LOG_LEVEL": "WARNING", **extra}


async def start_ours(data_dir: Path, *, embedded_btp: bool = False, **env: str) -> ServerProcess:
    server = ServerProcess(data_dir, env=our_env(**env), embedded_btp=embedded_btp)
    await server.start()
    return server


# --- JS pullers --------------------------------------------------------------------------------------------


async def js_pull(pid: int, pointer_url: str, btp_port: int, amount: int, limit: float = 120.0) -> Run:
    """One JS puller (harness/js/puller.js, 2.7.1 direct) pulling `amount`; server `pid` measured."""
    meter = CpuMeter(pid)
    meter.start()
    [result] = await run_js_pullers(pointer_url, btp_port, amount, "direct", timeout=limit)
    meter.stop()
    errors = [] if result.ok else [f"{result.error} (received {result.received})"]
    return Run(int(result.ok), 1, result.ms / 1000, result.prepares_received, meter.seconds, errors)


async def js_pull_batch(
    pid: int, pointer_urls: list[str], btp_port: int, amount: int, concurrency: int | None = None
) -> Run:
    """One pull per pointer, at most `concurrency` at once (default: all), from one JS process
    (bench/js/pullers.js)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
        listing.write("\n".join(pointer_urls) + "\n")
    runtime = select_runtime()
    command = runtime.command("pullers.js")
    command[command.index(str(JS_DIR / "pullers.js"))] = str(BENCH_JS)
    command += ["--btp-port", str(btp_port), "--amount", str(amount), "--pointers-file", listing.name]
    command += ["--concurrency", str(concurrency or len(pointer_urls))]
    process = NodeProcess("pullers.js", command, env={"NODE_PATH": str(JS_DIR / "node_modules")})
    meter = CpuMeter(pid)
    meter.start()
    try:
        await process.launch()
        status = await process.wait_exit(120)
    finally:
        meter.stop()
        os.unlink(listing.name)
    if status != 0:
        raise RuntimeError(f"pullers.js exited {status}:\n{process.output()}")
    lines = [json.loads(line) for line in process.stdout_lines if line.strip()]
    results = [line for line in lines if "ok" in line]
    [batch] = [line for line in lines if "batch_ms" in line]
    ok = sum(1 for r in results if r["ok"])
    packets = sum(int(r["prepares_received"]) for r in results)
    errors = [f"{r['error']} (received {r['received']})" for r in results if not r["ok"]]
    return Run(ok, len(results), batch["batch_ms"] / 1000, packets, meter.seconds, errors)


# --- scenarios ---------------------------------------------------------------------------------------------


async def large_pull_via_connector(
    runs: int,
    amount: int = 1_000_000,
    packet: int = 1000,
    *,
    also_in_flight: int | None = None,
    warmup: int = 1,
) -> dict[str, Series]:
    """1,000,000 units at 1,000 per packet through moneyd (connector maxPacketAmount, F08 path): our server
    with its default settings ("ours"), with `also_in_flight` Prepares in flight ("ours_in_flight", a second
    server on the same connector), and the JS pull server, the same JS puller for all."""
    async with contextlib.AsyncExitStack() as stack:
        connector = await stack.enter_async_context(
            JsConnector(max_packet_amount=packet, disable_rate_limit=True)
        )
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        servers = {"ours": await start_ours(tmp / "a", SPSP_ILP_UPLINK=connector.btp_url(unique_name("srv")))}
        stack.push_async_callback(servers["ours"].stop)
        if also_in_flight is not None:
            servers["ours_in_flight"] = await start_ours(
                tmp / "b",
                SPSP_ILP_UPLINK=connector.btp_url(unique_name("srv")),
                SPSP_MAX_IN_FLIGHT=str(also_in_flight),
            )
            stack.push_async_callback(servers["ours_in_flight"].stop)
        js = await stack.enter_async_context(JsPullServer(connector))
        assert js.pid is not None
        js_pid = js.pid

        def measure_ours(server: ServerProcess) -> Measure:
            async def measure() -> Run:
                [url] = await create_pointers(server.url, 1, amount)
                return await js_pull(server.pid, url, connector.port, amount)

            return measure

        async def measure_js() -> Run:
            return await js_pull(js_pid, js.pointer_url(amount), connector.port, amount)

        measures = {label: measure_ours(server) for label, server in servers.items()}
        async with profiling(servers["ours"].pid, "large_connector"):
            return await alternate(runs, warmup, {**measures, "js": measure_js})


async def many_pulls_via_connector(
    batches: int,
    pullers: int = 50,
    amount: int = 1000,
    warmup: int = 1,
    *,
    pulls: int | None = None,
    profile: str = "many_connector",
) -> dict[str, Series]:
    """`pulls` JS pulls of `amount` (default: `pullers`), each from its own pointer, `pullers` at a time,
    through moneyd. Server CPU per completed pull is the batch's CPU over its completed pulls."""
    total = pulls or pullers
    async with JsConnector(disable_rate_limit=True) as connector:
        user = unique_name("pullsrv")
        with tempfile.TemporaryDirectory() as tmp:
            ours = await start_ours(Path(tmp), SPSP_ILP_UPLINK=connector.btp_url(user))
            try:
                async with JsPullServer(connector) as js:
                    assert js.pid is not None
                    js_pid = js.pid

                    async def measure_ours() -> Run:
                        urls = await create_pointers(ours.url, total, amount)
                        return await js_pull_batch(ours.pid, urls, connector.port, amount, pullers)

                    async def measure_js() -> Run:
                        urls = [js.pointer_url(amount)] * total
                        return await js_pull_batch(js_pid, urls, connector.port, amount, pullers)

                    async with profiling(ours.pid, profile):
                        return await alternate(batches, warmup, {"ours": measure_ours, "js": measure_js})
            finally:
                await ours.stop()


async def direct(
    runs: int,
    batches: int,
    *,
    amount: int = 1_000_000,
    packet: int = 1000,
    pullers: int = 50,
    pull_amount: int = 1000,
    in_flight: int = 16,
    warmup: int = 1,
) -> dict[str, dict[str, Series]]:
    """No connector: our embedded BTP endpoint against the JS direct-BTP server, with the JS puller (one
    Prepare in flight), and our own puller with `in_flight` Prepares in flight against our server."""
    with tempfile.TemporaryDirectory() as tmp:
        ours = await start_ours(
            Path(tmp),
            embedded_btp=True,
            SPSP_MAX_PACKET_AMOUNT=str(packet),
            SPSP_MAX_IN_FLIGHT=str(in_flight),
        )
        try:
            async with JsDirectBtpServer(max_packet_amount=packet) as js:
                assert js.pid is not None and ours.btp_port is not None
                js_pid, our_btp = js.pid, ours.btp_port

                async def large_ours() -> Run:
                    [url] = await create_pointers(ours.url, 1, amount)
                    return await js_pull(ours.pid, url, our_btp, amount)

                async def large_js() -> Run:
                    return await js_pull(js_pid, js.pointer_url(amount), js.btp_port, amount)

                async def large_python() -> Run:
                    [url] = await create_pointers(ours.url, 1, amount)
                    return await python_pull_run(ours.pid, url, our_btp, amount, in_flight)

                large = await alternate(
                    runs, warmup, {"ours": large_ours, "js": large_js, "ours_e2e": large_python}
                )

                async def many_ours() -> Run:
                    urls = await create_pointers(ours.url, pullers, pull_amount)
                    return await js_pull_batch(ours.pid, urls, our_btp, pull_amount)

                async def many_js() -> Run:
                    return await js_pull_batch(
                        js_pid, [js.pointer_url(pull_amount)] * pullers, js.btp_port, pull_amount
                    )

                many = await alternate(batches, warmup, {"ours": many_ours, "js": many_js})
                return {"large": large, "many": many}
        finally:
            await ours.stop()


async def python_pull_run(pid: int, url: str, btp_port: int, amount: int, in_flight: int) -> Run:
    """Our Python puller (spsp_pull.payee.pull) with `in_flight` Prepares in flight."""
    packets = 0

    def progress(_: int) -> None:
        nonlocal packets
        packets += 1

    meter = CpuMeter(pid)
    meter.start()
    started = time.perf_counter()
    outcome = await python_pull(
        url,
        amount,
        btp_url=btp_url(btp_port, unique_name("payee")),
        max_in_flight=in_flight,
        on_progress=progress,
        time_limit=timedelta(seconds=120),
    )
    wall = time.perf_counter() - started
    meter.stop()
    errors = [] if outcome.complete else [f"{outcome.reason} {outcome.detail} (received {outcome.amount})"]
    return Run(int(outcome.complete), 1, wall, packets, meter.seconds, errors)


async def _main() -> None:  # pragma: no cover - manual use
    import sys

    global PROFILE_DIR
    if os.environ.get("BENCH_PROFILE"):
        PROFILE_DIR = Path(os.environ["BENCH_PROFILE"])
    which = sys.argv[1] if len(sys.argv) > 1 else "large"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    if which == "large":
        in_flight = os.environ.get("IN_FLIGHT")
        result = await large_pull_via_connector(runs, also_in_flight=int(in_flight) if in_flight else None)
        print(json.dumps({k: v.summary() for k, v in result.items()}, indent=1))
    elif which == "many":
        result = await many_pulls_via_connector(runs)
        print(json.dumps({k: v.summary() for k, v in result.items()}, indent=1))
    elif which == "short":
        result = await many_pulls_via_connector(runs, pulls=300, profile="short_connector")
        print(json.dumps({k: v.summary() for k, v in result.items()}, indent=1))
    elif which == "direct":
        out = await direct(runs, runs)
        print(json.dumps({s: {k: v.summary() for k, v in d.items()} for s, d in out.items()}, indent=1))


if __name__ == "__main__":
    asyncio.run(_main())
