"""`spsp-pull collect` and `spsp_pull.collector.collect` against a real server process (embedded BTP endpoint
on loopback), on SQLite and PostgreSQL: the server's database and the collector's state alike.

Every test ends with the server's ledger: each pointer's total pulled, read from its SPSP answer, is exactly
what the collector says arrived, and the ledger audit is clean."""

from __future__ import annotations

import asyncio
import csv
import json
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from harness.server_process import SPSP_PULL, ServerProcess, create_pointer, run_cli
from spsp_pull.cli_errors import ExitStatus
from spsp_pull.collector import Kind, PointerItem, SqlState, collect
from spsp_pull.collector.plan import Pull, View, begin
from spsp_pull.collector.state import collect_state
from spsp_pull.domain.clock import isoformat_z
from spsp_pull.payee import pull, query
from tests.ilp.hostile.databases import process_database

ADMIN = "collect-admin"
pytestmark = pytest.mark.slow


@dataclass
class Served:
    server: ServerProcess
    state_url: str  # the collector's state: a SQLite file, or the server's PostgreSQL database

    def btp(self, user: str = "shop") -> str:
        return f"btp+ws://{user}:secret-{user}@127.0.0.1:{self.server.btp_port}"

    async def pointer(self, **fields: Any) -> str:
        token = await create_pointer(self.server, ADMIN, **{"amount": "1000", **fields})
        return f"{self.server.url}/{token}"

    async def total(self, pointer: str) -> int:
        details = await query(pointer)
        assert details.pull is not None
        return int(details.pull["balance"]["total"])


@pytest.fixture
async def served(backend: str, tmp_path: Path) -> AsyncIterator[Served]:
    data_dir = tmp_path / "server"
    async with process_database(backend, data_dir) as url:
        env = {"SPSP_AUTH_TOKEN": ADMIN, **({"SPSP_DATABASE_URL": url} if url else {})}
        async with ServerProcess(data_dir, env=env, embedded_btp=True) as server:
            state_url = url or f"sqlite+aiosqlite:///{tmp_path / 'collect.sqlite3'}"
            yield Served(server, state_url)
            await server.assert_audit_clean()


async def change(served: Served, pointer: str, method: str, body: object = None) -> None:
    """The payer's change (DELETE: cancel; PATCH with a body) of `pointer`."""
    token = pointer.rsplit("/", 1)[1]
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            f"{served.server.url}/pointers/{token}",
            json=body,
            headers={"Authorization": f"Bearer {ADMIN}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()


async def run_collect(served: Served, listing: Path, *extra: str) -> tuple[int, dict[str, Any], str]:
    status, out, err = await run_cli(
        "collect", str(listing), "--btp", served.btp(), "--state-url", served.state_url, "--json", *extra
    )
    assert out, err
    return status, json.loads(out), err


OUTCOME_FIELDS = {
    "pointer": str,
    "outcome": str,
    "amount": str,
    "target": str,
    "detail": str,
    "recovered": bool,
}


def check_schema(document: dict[str, Any]) -> None:
    """The JSON output's shape: a summary of counts and every pointer's outcome; money as integer strings."""
    assert set(document) == {"summary", "outcomes"}
    summary = document["summary"]
    kinds = {kind.value for kind in Kind}
    assert set(summary) == {"pointers", "amount", "elapsedMs", "peakConcurrency", *kinds}
    assert all(type(summary[k]) is int for k in summary if k != "amount")
    assert summary["amount"].isdigit()
    assert summary["pointers"] == len(document["outcomes"]) == sum(summary[k] for k in kinds)
    for outcome in document["outcomes"]:
        assert set(outcome) == {*OUTCOME_FIELDS, "cycle", "reason", "tookMs"}
        assert all(type(outcome[k]) is t for k, t in OUTCOME_FIELDS.items())
        assert outcome["outcome"] in kinds
        assert outcome["amount"].isdigit() and outcome["target"].isdigit()
        assert outcome["cycle"] is None or type(outcome["cycle"]) is int
        assert outcome["reason"] is None or type(outcome["reason"]) is str
        assert type(outcome["tookMs"]) is int and outcome["tookMs"] >= 0


async def test_a_mixed_list(served: Served, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    due = [await served.pointer() for _ in range(3)]
    own_amount = await served.pointer(amount="5000")
    taken = await served.pointer()
    outcome = await pull(taken, 1000, btp_url=served.btp("elsewhere"))
    assert outcome.complete
    cancelled = await served.pointer()
    await change(served, cancelled, "DELETE")
    paused = await served.pointer()
    await change(served, paused, "PATCH", {"paused": True})
    ended = await served.pointer(cap=True, start=isoformat_z(now - timedelta(days=2)))
    pending = await served.pointer(start=isoformat_z(now + timedelta(days=1)))
    unknown = f"{served.server.url}/no-such-pointer"
    listing = tmp_path / "subscribers.csv"
    with listing.open("w", newline="") as out:
        rows = csv.writer(out)
        rows.writerow(["pointer", "amount"])
        rows.writerows([[p, ""] for p in due])
        rows.writerows([[own_amount, "400"], [taken, ""], [cancelled, ""], [paused, ""], [ended, ""]])
        rows.writerow([pending, ""])
        rows.writerows([[unknown, ""], ["not a pointer", ""], [due[0], ""]])

    status, document, err = await run_collect(served, listing, "--concurrency", "4")
    check_schema(document)
    assert status == ExitStatus.PARTIAL, err  # two pointers failed
    got = {o["pointer"]: (o["outcome"], o["amount"], o["reason"]) for o in document["outcomes"]}
    assert [o["pointer"] for o in document["outcomes"]] == [
        *due,
        own_amount,
        taken,
        cancelled,
        paused,
        ended,
        pending,
        unknown,
        "not a pointer",
    ]
    assert got == {
        **dict.fromkeys(due, ("pulled", "1000", None)),
        own_amount: ("pulled", "400", None),
        taken: ("nothing-due", "0", "not-yet"),
        cancelled: ("cancelled", "0", "cancelled"),
        paused: ("paused", "0", "paused"),
        ended: ("ended", "0", "ended"),
        pending: ("nothing-due", "0", "pending"),
        unknown: ("failed", "0", "not-found"),
        "not a pointer": ("failed", "0", "bad-pointer"),
    }
    assert document["summary"]["amount"] == "3400"
    assert [await served.total(p) for p in [*due, own_amount, taken]] == [1000, 1000, 1000, 400, 1000]

    # Run again in the same cycle: nothing is pulled twice.
    status, again, _ = await run_collect(served, listing)
    check_schema(again)
    assert status == ExitStatus.PARTIAL
    assert {o["pointer"]: o["outcome"] for o in again["outcomes"] if o["pointer"] in due} == dict.fromkeys(
        due, "nothing-due"
    )
    assert again["summary"]["pulled"] == 0 and again["summary"]["amount"] == "0"
    assert [await served.total(p) for p in [*due, own_amount]] == [1000, 1000, 1000, 400]


async def test_the_concurrency_bound_holds_over_one_btp_connection(served: Served) -> None:
    pointers = [await served.pointer(amount=str(100 + n)) for n in range(12)]
    seen: list[Kind] = []
    async with SqlState.open(served.state_url) as state:
        report = await collect(
            [PointerItem(p) for p in pointers],
            btp_url=served.btp(),
            state=state,
            concurrency=3,
            on_outcome=lambda outcome: seen.append(outcome.kind),
        )
    assert 1 <= report.peak_concurrency <= 3
    assert [o.kind for o in report.outcomes] == [Kind.PULLED] * 12 and len(seen) == 12
    assert [o.amount for o in report.outcomes] == [100 + n for n in range(12)]
    assert [await served.total(p) for p in pointers] == [100 + n for n in range(12)]
    assert report.complete


async def test_a_pull_interrupted_between_pulling_and_recording_is_not_pulled_again(served: Served) -> None:
    """The intent was written and the pull made, but the run stopped before recording it: the next run
    reads the pull from the ledger. An intent whose pull never started is pulled, not skipped."""
    made, never = await served.pointer(), await served.pointer()
    async with SqlState.open(served.state_url) as state:
        for pointer in (made, never):
            details = await query(pointer)
            assert details.pull is not None
            view = View.of(details.pull)
            intent = begin(None, pointer, Pull(view.cycle, 1000, 0, 1000), view, datetime.now(UTC))
            await state.save(intent)
        assert (await pull(made, 1000, btp_url=served.btp("crashed-run"))).complete
        report = await collect([PointerItem(made), PointerItem(never)], btp_url=served.btp(), state=state)
        recovered, pulled = report.outcomes
        assert (recovered.kind, recovered.amount, recovered.recovered) == (Kind.PULLED, 1000, True)
        assert (pulled.kind, pulled.amount, pulled.recovered) == (Kind.PULLED, 1000, False)
        records = await state.load([made, never])
        assert all(r.intent is None and r.pulled == 1000 for r in records.values())
    assert [await served.total(made), await served.total(never)] == [1000, 1000]


async def test_a_run_killed_mid_way_and_run_again_pulls_every_pointer_exactly_once(
    served: Served, tmp_path: Path
) -> None:
    pointers = [await served.pointer(amount=str(1000 + n)) for n in range(40)]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(pointers) + "\n")
    command = [*SPSP_PULL, "collect", str(listing), "--btp", served.btp(), "--state-url", served.state_url]
    process = await asyncio.create_subprocess_exec(
        *command, "--concurrency", "4", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    engine = create_async_engine(served.state_url)
    try:
        async with asyncio.timeout(120):
            while process.returncode is None:  # until some pointers are recorded, then kill it
                try:
                    async with engine.connect() as connection:
                        recorded = await connection.scalar(
                            select(func.count()).select_from(collect_state).where(collect_state.c.pulled > 0)
                        )
                except Exception:  # the table is not there yet
                    recorded = 0
                if recorded and recorded >= 8:
                    process.send_signal(signal.SIGKILL)
                    break
                await asyncio.sleep(0.05)
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await engine.dispose()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed mid-way"

    status, document, err = await run_collect(served, listing, "--concurrency", "4")
    assert status == ExitStatus.OK, err
    check_schema(document)
    kinds = {o["pointer"]: o["outcome"] for o in document["outcomes"]}
    assert set(kinds.values()) <= {"pulled", "nothing-due"} and len(kinds) == 40
    assert 0 < list(kinds.values()).count("nothing-due") < 40
    assert [await served.total(p) for p in pointers] == [1000 + n for n in range(40)]
