"""`scripts/bench --smoke`: every benchmark scenario at tiny sizes, end to end. No timing is asserted; the
benchmarks themselves are not part of pass/fail, only that they run and produce the table."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.js_stack import in_ci, stack_problem

pytestmark = [pytest.mark.interop, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent


def test_bench_smoke_runs_every_scenario() -> None:
    problem = stack_problem()
    if problem is not None:
        if in_ci():
            pytest.fail(problem)
        pytest.skip(problem)
    postgres = "postgres" in os.environ.get("SPSP_TEST_BACKENDS", "sqlite,postgres")
    done = subprocess.run(
        [str(ROOT / "scripts" / "bench"), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    out = done.stdout
    for row in (
        "Large pull through moneyd",
        "Many pulls through moneyd",
        "Short pulls through moneyd",
        "Direct large pull",
        "Direct, ours end to end",
        "Direct many pulls",
        "SPSP queries/s",
        "pointer creations/s",
        "HTTP ceiling: aiohttp app",
        "HTTP ceiling: do-nothing asyncio.Protocol",
        "10 years in",
        "Collector: ",
        "| python client -> python server | 50 |",
        "| python server -> python client | 1 |",
        "## Machine and versions",
    ):
        assert row in out, f"{row!r} missing from the smoke table:\n{out[-4000:]}"
    if postgres:
        assert "SPSP query latency" in out
        assert "HTTP, 10 connections, postgres" in out
