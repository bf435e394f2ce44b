"""Every benchmark, side by side with the JavaScript stack, and the table of docs/benchmarks.md.

    python -m bench.run                      # full sizes; writes docs/benchmarks.md and bench/results.json
    python -m bench.run --smoke              # tiny sizes, prints the table (the test suite runs this)
    python -m bench.run --only http,scale    # some scenario groups (GROUPS)
    python -m bench.run --profile DIR        # also sample our server with py-spy in the pull scenarios

`scripts/bench` installs what is needed first (venv, the pinned JS stack, PostgreSQL) and then runs this.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import sqlite3
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import btp_links, collect, http_api, pulls, scale
from harness.js_stack import JS_DIR, MONEYD_DIR, select_runtime

ROOT = Path(__file__).resolve().parent.parent
GROUPS = ("connector", "direct", "http", "scale", "collect", "btp")


@dataclass(frozen=True)
class Sizes:
    runs: int = 5  # large pulls per server
    batches: int = 5  # batches of concurrent pulls per server
    warmup: int = 1
    amount: int = 1_000_000
    packet: int = 1000
    pullers: int = 50
    pull_amount: int = 1000
    short_pulls: int = 300  # one-packet pulls per batch, `pullers` at a time (billing day)
    in_flight: int = 16  # our Python puller and our server, direct
    creates: int = 2000
    queries: int = 20_000
    http_rounds: int = 3
    concurrency: int = 50
    scale_small: int = 1000
    scale_large: int = 1_000_000
    scale_queries: int = 20_000
    balance_calls: int = 5000
    collect_pulls: int = 300  # one-packet pulls per run, our collector vs the JS pullers
    collect_concurrency: int = 50
    btp_prepares: int = 10_000  # echo round trips per run over one BTP link, each direction and window


SMOKE = Sizes(
    runs=1,
    batches=1,
    warmup=0,
    amount=20_000,
    pullers=5,
    short_pulls=10,
    creates=50,
    queries=300,
    http_rounds=1,
    concurrency=10,
    scale_small=100,
    scale_large=1000,
    scale_queries=300,
    balance_calls=100,
    collect_pulls=10,
    collect_concurrency=10,
    btp_prepares=100,
)


@dataclass
class Report:
    started: str
    smoke: bool
    sizes: dict[str, Any]
    machine: dict[str, str]
    results: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


# --- the machine -------------------------------------------------------------------------------------------


def _run(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20, check=False)  # noqa: S603
        return done.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) // 1024 // 1024} GiB"
    except OSError:
        pass
    return "?"


def _lock_version(lockfile: Path, package: str) -> str:
    try:
        data = json.loads(lockfile.read_text())
        return str(data["packages"][f"node_modules/{package}"]["version"])
    except (OSError, KeyError, ValueError):
        return "?"


def machine(postgres: bool) -> dict[str, str]:
    versions = {
        name: importlib.metadata.version(name)
        for name in ("aiohttp", "websockets", "SQLAlchemy", "asyncpg", "cryptography")
    }
    info = {
        "cpu": f"{_cpu_model()}, {os.cpu_count()} cores",
        "memory": _memory(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "python packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "node": _run([select_runtime().node, "--version"]),
        "js stack": (
            f"ilp-protocol-stream {_lock_version(JS_DIR / 'package-lock.json', 'ilp-protocol-stream')}, "
            f"ilp-plugin-btp {_lock_version(JS_DIR / 'package-lock.json', 'ilp-plugin-btp')}, "
            f"moneyd {_lock_version(MONEYD_DIR / 'package-lock.json', 'moneyd')} "
            f"(ilp-connector {_lock_version(MONEYD_DIR / 'package-lock.json', 'ilp-connector')})"
        ),
        "commit": _run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
        + (" (with local changes)" if _run(["git", "-C", str(ROOT), "status", "--porcelain"]) else ""),
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }
    if postgres:
        info["postgresql"] = _run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-tAc", "show server_version"]
        )
    return info


# --- running ----------------------------------------------------------------------------------------------


def _summaries(series: dict[str, pulls.Series]) -> dict[str, Any]:
    return {label: s.summary() for label, s in series.items()}


async def run_groups(
    groups: list[str], sizes: Sizes, postgres: bool, log: Callable[[str], None]
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if "connector" in groups:
        log("large pull through moneyd")
        results["large_connector"] = _summaries(
            await pulls.large_pull_via_connector(
                sizes.runs, sizes.amount, sizes.packet, also_in_flight=sizes.in_flight, warmup=sizes.warmup
            )
        )
        log("many pulls through moneyd")
        results["many_connector"] = _summaries(
            await pulls.many_pulls_via_connector(
                sizes.batches, sizes.pullers, sizes.pull_amount, warmup=sizes.warmup
            )
        )
        log(f"short pulls through moneyd: {sizes.short_pulls} one-packet pulls, {sizes.pullers} at a time")
        results["short_connector"] = _summaries(
            await pulls.many_pulls_via_connector(
                sizes.batches,
                sizes.pullers,
                sizes.pull_amount,
                warmup=sizes.warmup,
                pulls=sizes.short_pulls,
                profile="short_connector",
            )
        )
    if "direct" in groups:
        log("direct: large pulls and many pulls, no connector")
        direct = await pulls.direct(
            sizes.runs,
            sizes.batches,
            amount=sizes.amount,
            packet=sizes.packet,
            pullers=sizes.pullers,
            pull_amount=sizes.pull_amount,
            in_flight=sizes.in_flight,
            warmup=sizes.warmup,
        )
        results["large_direct"] = _summaries(direct["large"])
        results["many_direct"] = _summaries(direct["many"])
    if "http" in groups:
        backends = ["sqlite", "postgres"] if postgres else ["sqlite"]
        ceilings = [f"ceiling-{kind}" for kind in http_api.CEILINGS]
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in ["js", *backends, *ceilings]}
        for i in range(sizes.http_rounds):
            for name in rounds:
                log(f"http: {name} (round {i + 1} of {sizes.http_rounds})")
                if name == "js":
                    result = await http_api.bench_js(sizes.concurrency, sizes.queries)
                elif name in ceilings:
                    kind = name.removeprefix("ceiling-")
                    result = await http_api.bench_ceiling(kind, sizes.concurrency, sizes.queries)
                else:
                    result = await http_api.bench_ours(name, sizes.concurrency, sizes.creates, sizes.queries)
                rounds[name].append(asdict(result))
        results["http"] = {name: _median_of(rows) for name, rows in rounds.items()}
    if "scale" in groups:
        log("scale: balance far into a PT1S agreement")
        results["balance"] = [asdict(r) for r in scale.balance_cost(sizes.balance_calls)]
        if postgres:
            log(f"scale: {sizes.scale_small:,} then {sizes.scale_large:,} pointers in PostgreSQL")
            latency = await scale.pointer_scale(
                sizes.scale_small, sizes.scale_large, sizes.scale_queries, sizes.concurrency
            )
            results["scale"] = [asdict(r) for r in latency]
    if "collect" in groups:
        log(f"collect: {sizes.collect_pulls} pulls, our collector vs the JS pullers")
        results["collect"] = _summaries(
            await collect.collector_vs_js(
                sizes.batches, sizes.collect_pulls, sizes.collect_concurrency, sizes.pull_amount, sizes.warmup
            )
        )
    if "btp" in groups:
        log(f"btp: {sizes.btp_prepares:,} echo Prepares over one BTP link, each way, {sizes.runs} runs")
        results["btp_links"] = [asdict(r) for r in await btp_links.link_rates(sizes.btp_prepares, sizes.runs)]
    return results


def _median_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per field, the median over the rounds (numbers), or the first value."""
    out: dict[str, Any] = {}
    for key in rows[0]:
        values = [row[key] for row in rows]
        if all(isinstance(v, int | float) for v in values):
            ordered = sorted(values)
            out[key] = ordered[len(ordered) // 2]
        else:
            out[key] = values[0]
    out["rounds"] = len(rows)
    return out


# --- the table --------------------------------------------------------------------------------------------


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "-"


def _n(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def table(results: dict[str, Any], sizes: Sizes) -> list[str]:
    """The summary table: one row per measure, ours against the JS peer measured in the same run."""
    rows: list[tuple[str, str, str, str, str, str, str]] = []

    def row(
        scenario: str, measure: str, ours: float, js: float, digits: int, target: str, met: bool | None
    ) -> None:
        verdict = "" if met is None else ("met" if met else "**not met**")
        rows.append((scenario, measure, _n(ours, digits), _n(js, digits), _ratio(ours, js), target, verdict))

    pull = f"{sizes.amount:,} units at {sizes.packet:,}/packet"
    if "large_connector" in results:
        ours, js = results["large_connector"]["ours"], results["large_connector"]["js"]
        name = f"Large pull through moneyd ({pull}), same JS puller"
        row(
            name,
            "wall ms (median)",
            ours["wall_ms"],
            js["wall_ms"],
            0,
            "<= 1x",
            ours["wall_ms"] <= js["wall_ms"],
        )
        row(name, "packets/s", ours["packets_per_s"], js["packets_per_s"], 0, "", None)
        row(
            name,
            "server CPU ms per packet",
            ours["cpu_ms_per_packet"],
            js["cpu_ms_per_packet"],
            3,
            "<= 0.5x",
            ours["cpu_ms_per_packet"] <= 0.5 * js["cpu_ms_per_packet"],
        )
        if "ours_in_flight" in results["large_connector"]:
            more = results["large_connector"]["ours_in_flight"]
            name = f"Same, our server with SPSP_MAX_IN_FLIGHT={sizes.in_flight} (default 4)"
            row(name, "wall ms (median)", more["wall_ms"], js["wall_ms"], 0, "", None)
            row(
                name,
                "server CPU ms per packet",
                more["cpu_ms_per_packet"],
                js["cpu_ms_per_packet"],
                3,
                "",
                None,
            )
    if "many_connector" in results:
        ours, js = results["many_connector"]["ours"], results["many_connector"]["js"]
        name = f"Many pulls through moneyd ({sizes.pullers} concurrent x {sizes.pull_amount:,}, own pointers)"
        row(name, "completed pulls/s", ours["pulls_per_s"], js["pulls_per_s"], 1, "", None)
        row(name, "server CPU ms per pull", *_per_pull(ours, js), 2, "", None)
    if "short_connector" in results:
        ours, js = results["short_connector"]["ours"], results["short_connector"]["js"]
        name = (
            f"Short pulls through moneyd ({sizes.short_pulls} pulls of {sizes.pull_amount:,}, one packet "
            f"each, {sizes.pullers} at a time, own pointers)"
        )
        row(
            name,
            "completed pulls/s",
            ours["pulls_per_s"],
            js["pulls_per_s"],
            1,
            ">= 1.5x",
            ours["pulls_per_s"] >= 1.5 * js["pulls_per_s"],
        )
        ours_cpu, js_cpu = _per_pull(ours, js)
        row(
            name, "server CPU ms per completed pull", ours_cpu, js_cpu, 2, "<= 0.4x", ours_cpu <= 0.4 * js_cpu
        )
    if "large_direct" in results:
        large = results["large_direct"]
        ours, js, e2e = large["ours"], large["js"], large["ours_e2e"]
        name = f"Direct large pull ({pull}): embedded BTP vs JS direct-BTP server, JS puller"
        row(name, "packets/s", ours["packets_per_s"], js["packets_per_s"], 0, "", None)
        row(name, "server CPU ms per packet", ours["cpu_ms_per_packet"], js["cpu_ms_per_packet"], 3, "", None)
        name = f"Direct, ours end to end (Python puller, {sizes.in_flight} in flight) vs the JS direct pair"
        row(
            name,
            "packets/s",
            e2e["packets_per_s"],
            js["packets_per_s"],
            0,
            ">= 3x",
            e2e["packets_per_s"] >= 3 * js["packets_per_s"],
        )
        row(name, "wall ms (median)", e2e["wall_ms"], js["wall_ms"], 0, "", None)
    if "many_direct" in results:
        ours, js = results["many_direct"]["ours"], results["many_direct"]["js"]
        name = f"Direct many pulls ({sizes.pullers} concurrent x {sizes.pull_amount:,}, own pointers)"
        row(name, "completed pulls/s", ours["pulls_per_s"], js["pulls_per_s"], 1, "", None)
        row(name, "server CPU ms per pull", *_per_pull(ours, js), 2, "", None)
    if "http" in results:
        http = results["http"]
        js = http["js"]
        for backend in ("sqlite", "postgres"):
            if backend not in http:
                continue
            ours = http[backend]
            name = f"HTTP, {sizes.concurrency} connections, {backend} (JS: its pull server's SPSP endpoint)"
            row(
                name,
                "SPSP queries/s",
                ours["queries_per_s"],
                js["queries_per_s"],
                0,
                ">= 2x",
                ours["queries_per_s"] >= 2 * js["queries_per_s"],
            )
            row(
                name,
                "server CPU ms per query",
                ours["server_cpu_ms_per_query"],
                js["server_cpu_ms_per_query"],
                3,
                "",
                None,
            )
            row(name, "query p99 ms", ours["query_p99_ms"], js["query_p99_ms"], 1, "", None)
            rows.append((name, "pointer creations/s", _n(ours["creates_per_s"], 0), "-", "-", "", ""))
        ceilings = {
            "ceiling-aiohttp": "aiohttp app, one constant handler",
            "ceiling-asyncio": "do-nothing asyncio.Protocol responder",
        }
        for key, what in ceilings.items():
            if key not in http:
                continue
            ceiling = http[key]
            name = f"HTTP ceiling: {what}, same load generator (constant SPSP answer)"
            row(name, "requests/s", ceiling["queries_per_s"], js["queries_per_s"], 0, "", None)
            cpu = ceiling["server_cpu_ms_per_query"]
            row(name, "server CPU ms per request", cpu, js["server_cpu_ms_per_query"], 3, "", None)
    if "collect" in results:
        ours, js = results["collect"]["ours"], results["collect"]["js"]
        name = (
            f"Collector: {sizes.collect_pulls} pulls of {sizes.pull_amount:,}, "
            f"{sizes.collect_concurrency} at once (ours: `spsp_pull.collector` over one BTP connection, "
            "embedded endpoint; JS: its pullers, one BTP account per pull, direct-BTP server)"
        )
        met = ours["pulls_per_s"] >= 5 * js["pulls_per_s"]
        row(name, "completed pulls/s", ours["pulls_per_s"], js["pulls_per_s"], 1, ">= 5x", met)
        row(name, "server CPU ms per pull", *_per_pull(ours, js), 2, "", None)
    lines = [
        "| scenario | measure | ours | JS | ours / JS | target | |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    if "scale" in results:
        small, large = results["scale"]
        met = large["p99_ms"] <= 2 * small["p99_ms"]
        lines += [
            "",
            f"| scale (PostgreSQL, {sizes.concurrency} connections, random tokens) | pointers | queries/s "
            "| p50 ms | p99 ms | target | |",
            "|---|---|---|---|---|---|---|",
            f"| SPSP query latency | {small['pointers']:,} | {_n(small['per_second'])} | {small['p50_ms']} "
            f"| {small['p99_ms']} | | |",
            f"| SPSP query latency | {large['pointers']:,} | {_n(large['per_second'])} | {large['p50_ms']} "
            f"| {large['p99_ms']} | p99 <= 2x the {small['pointers']:,}-pointer p99 "
            f"({large['p99_ms'] / small['p99_ms']:.2f}x) | {'met' if met else '**not met**'} |",
        ]
    if "balance" in results:
        first, far = results["balance"]
        met = far["micros"] <= 2 * first["micros"]
        lines += [
            "",
            "| balance computation (`spsp_pull.domain.agreement.balance`, PT1S interval) | cycles elapsed "
            "| µs per call (median) | target | |",
            "|---|---|---|---|---|",
            f"| {first['label']} | {first['cycles_elapsed']:,} | {first['micros']} | | |",
            f"| {far['label']} | {far['cycles_elapsed']:,} | {far['micros']} | does not grow with elapsed "
            f"cycles ({far['micros'] / first['micros']:.2f}x) | {'met' if met else '**not met**'} |",
        ]
    if "btp_links" in results:
        lines += [
            "",
            f"| BTP link (`bench/btp_links.py`: our client and server, loopback, {sizes.btp_prepares:,} echo "
            "Prepares, every Fulfill checked) | in flight | Prepares/s (median) |",
            "|---|---|---|",
            *(
                f"| {r['direction']} | {r['in_flight']} | {_n(r['prepares_per_second'])} |"
                for r in results["btp_links"]
            ),
        ]
    return lines


def _per_pull(ours: dict[str, Any], js: dict[str, Any]) -> tuple[float, float]:
    """Server CPU per completed pull (each batch's CPU over its completed pulls; the median batch)."""
    return ours["cpu_ms_per_pull"], js["cpu_ms_per_pull"]


def render(report: Report, sizes: Sizes, notes: str) -> str:
    lines = table(report.results, sizes)
    machine_lines = [f"- {key}: {value}" for key, value in report.machine.items()]
    return "\n".join(
        [
            "# Benchmarks: spsp-pull side by side with the JavaScript Interledger stack",
            "",
            "<!-- Written by `scripts/bench` down to the notes marker; the notes after it are kept. -->",
            "",
            "Ours against the JS peer measured in the same run, on the same machine, with the same JS puller",
            "and the same load generator; medians over the runs (see *How it is measured* below).",
            "",
            "## Results",
            "",
            f"Measured {report.started} in {report.seconds:.0f} s{' (smoke sizes)' if report.smoke else ''}.",
            "",
            *lines,
            "",
            "## Machine and versions",
            "",
            *machine_lines,
            "",
            notes.strip(),
            "",
        ]
    )


NOTES_MARKER = "<!-- notes -->"


def existing_notes(path: Path) -> str:
    """The hand-written part of docs/benchmarks.md (from the notes marker on), kept across runs."""
    if path.exists():
        text = path.read_text()
        if NOTES_MARKER in text:
            return text[text.index(NOTES_MARKER) :]
    return NOTES_MARKER


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; prints the table, writes no docs")
    parser.add_argument("--only", default=",".join(GROUPS), help=f"comma-separated groups of {GROUPS}")
    parser.add_argument("--runs", type=int, help="large pulls and batches per server")
    parser.add_argument("--no-postgres", action="store_true", help="skip what needs PostgreSQL")
    parser.add_argument(
        "--out", type=Path, help="markdown file (default docs/benchmarks.md; none with --smoke)"
    )
    parser.add_argument("--json", type=Path, help="raw results (default bench/results.json with docs)")
    parser.add_argument("--profile", type=Path, help="sample our server with py-spy into this directory")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else Sizes()
    if args.runs:
        sizes = Sizes(**{**asdict(sizes), "runs": args.runs, "batches": args.runs})
    groups = [g for g in args.only.split(",") if g]
    unknown = set(groups) - set(GROUPS)
    if unknown:
        parser.error(f"unknown groups {sorted(unknown)}; choose from {GROUPS}")
    if args.profile:
        pulls.PROFILE_DIR = args.profile
    postgres = not args.no_postgres
    out = args.out if args.out else (None if args.smoke else ROOT / "docs" / "benchmarks.md")
    report = Report(
        started=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        smoke=args.smoke,
        sizes=asdict(sizes),
        machine=machine(postgres),
    )
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", flush=True)

    report.results = asyncio.run(run_groups(groups, sizes, postgres, log))
    report.seconds = time.perf_counter() - started
    text = render(report, sizes, existing_notes(out) if out else NOTES_MARKER)
    print(text)
    if out is not None:
        out.write_text(text)
        raw = args.json or (ROOT / "bench" / "results.json" if args.out is None else out.with_suffix(".json"))
        raw.write_text(json.dumps(asdict(report), indent=1) + "\n")
        log(f"wrote {out} and {raw}")


if __name__ == "__main__":
    main()
