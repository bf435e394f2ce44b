"""The operator's metrics: what a running server exports at /metrics, that pulls, reservations, webhooks,
payouts and the database pool are counted as they happen (and only once committed), that each server counts
in its own registry, and that the Grafana dashboard asks only for metrics a server exports."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from harness.server_process import ServerProcess, create_pointer
from spsp_pull.bridge.amounts import DebitUnits
from spsp_pull.bridge.network import Network
from spsp_pull.bridge.states import Trigger
from spsp_pull.domain.clock import ManualClock
from spsp_pull.domain.states import ReservationKind
from spsp_pull.metrics import Metrics
from spsp_pull.payee import pull
from spsp_pull.store import reservations
from spsp_pull.store.database import Database, after_commit
from tests.bridge import factories, harness
from tests.bridge.conftest import bitcoind, bridge_clock  # noqa: F401 (fixtures)
from tests.bridge.fakes.fake_bitcoind import FakeBitcoind
from tests.test_webhooks import Receiver, pull_with_webhook, receiver, worker  # noqa: F401 (fixture)

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "docker" / "grafana" / "dashboard.json"
ADMIN = "metrics-admin"
METRIC_NAME = re.compile(r"\bspsp_[a-z0-9_]+\b")
SAMPLE_SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count"),
}


def exported_names(exposition: str) -> set[str]:
    """Every series name the exposition offers, families without samples yet included (by their type)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def samples(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


def dashboard_metric_names() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert exprs, "the dashboard has no queries"
    return {name for expr in exprs for name in METRIC_NAME.findall(expr)}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[ServerProcess]:
    env = {"SPSP_AUTH_TOKEN": ADMIN, "SPSP_MAX_PACKET_AMOUNT": "100"}
    async with ServerProcess(tmp_path / "server", env=env, embedded_btp=True) as s:
        yield s


async def scrape(server: ServerProcess) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}/metrics") as response,
    ):
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return await response.text()


async def scrape_until(server: ServerProcess, name: str, labels: dict[str, str], value: float) -> str:
    """Poll another process's /metrics (a pull is counted after it settles, which the payee does not wait
    for; there is no event to await) for at most 10 s."""
    key = (name, frozenset(labels.items()))
    for _ in range(100):
        exposition = await scrape(server)
        if samples(exposition).get(key) == value:
            return exposition
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name}{labels} is {samples(exposition).get(key)}, not {value}")


def btp(server: ServerProcess) -> str:
    return f"btp+ws://payee:secret-payee@127.0.0.1:{server.btp_port}"


async def test_a_server_counts_pulls_packets_queries_and_reservations(server: ServerProcess) -> None:
    token = await create_pointer(server, ADMIN, amount="1500")
    pointer = f"{server.url}/{token}"
    complete = await pull(pointer, 1000, btp_url=btp(server))
    assert complete.amount == 1000
    await scrape_until(server, "spsp_pulls_total", {"outcome": "complete", "reason": ""}, 1)
    partial = await pull(pointer, 1000, btp_url=btp(server))
    assert partial.amount == 500
    exposition = await scrape_until(server, "spsp_pulls_total", {"outcome": "partial", "reason": ""}, 1)
    empty = await pull(pointer, 1000, btp_url=btp(server))
    assert empty.amount == 0
    await scrape_until(server, "spsp_pulls_total", {"outcome": "refused", "reason": "used-up"}, 1)
    no_rate = await create_pointer(server, ADMIN, assetCode="USD", assetScale=2)
    refused = await pull(f"{server.url}/{no_rate}", 1000, btp_url=btp(server))
    assert (refused.amount, refused.detail) == (0, "no rate from USD to XRP")

    exposition = await scrape(server)  # counted before the refusal was answered
    values = samples(exposition)

    def value(name: str, **labels: str) -> float:
        return values.get((name, frozenset(labels.items())), 0.0)

    assert value("spsp_pulls_total", outcome="refused", reason="no-rate") == 1
    assert value("spsp_pulls_total", outcome="refused", reason="nothing-available") == 0
    assert value("spsp_pulls_total", outcome="failed", reason="") == 0
    assert value("spsp_pull_duration_seconds_count") == 3
    # 1000 then 500 in packets of at most 100 units: 15 packets over the pulls, each pull observed once.
    assert value("spsp_pull_packets_count") == 3
    assert value("spsp_pull_packets_sum") == 15
    assert value("spsp_pull_packets_bucket", le="5.0") == 2  # the empty pull and the 5-packet one
    assert value("spsp_pull_connections_total") == 3
    assert value("spsp_pointers_created_total") == 2
    assert value("spsp_queries_total") == 4  # each pull queried the pointer first
    assert value("spsp_query_duration_seconds_count") == 4
    made = value("spsp_reservations_total", event="made")
    assert made >= 2 and value("spsp_reservations_total", event="settled") == made
    assert value("spsp_reservations_total", event="recovered") == 0
    assert value("spsp_http_requests_total", method="POST", status="201") == 2
    assert value("spsp_http_requests_total", method="GET", status="200") >= 4
    assert value("spsp_db_pool_checked_out", pool="sqlalchemy") == 0  # nothing held between requests


async def test_the_dashboard_asks_only_for_metrics_a_server_exports(server: ServerProcess) -> None:
    exported = exported_names(await scrape(server))
    wanted = dashboard_metric_names()
    assert wanted - exported == set()
    # Every family the server has is on the dashboard (one panel or another).
    families = {name for name in exported if not name.endswith(("_bucket", "_sum", "_count", "_created"))}
    on_dashboard = {name for name in families if any(w.startswith(name) for w in wanted)}
    assert families - on_dashboard == set()


async def test_the_metrics_the_readme_lists_are_exported(server: ServerProcess) -> None:
    section = (ROOT / "README.md").read_text().split("\n## Metrics and logs\n", 1)[1].split("\n## ", 1)[0]
    listed = set(METRIC_NAME.findall(section))
    assert len(listed) >= 10
    exposition = await scrape(server)
    histograms = {f.name for f in text_string_to_metric_families(exposition) if f.type == "histogram"}
    assert listed - exported_names(exposition) - histograms == set()


def test_each_server_counts_in_its_own_registry() -> None:
    first, second = Metrics(), Metrics()  # the library's global registry would refuse the second
    first.http_request("GET", 200)
    first.http_request("BREW", 418)
    first.pointer_created()
    assert first.value("spsp_http_requests_total", method="GET", status="200") == 1
    assert first.value("spsp_http_requests_total", method="OTHER", status="418") == 1
    assert first.value("spsp_pointers_created_total") == 1
    assert second.value("spsp_http_requests_total", method="GET", status="200") == 0
    assert second.value("spsp_pointers_created_total") == 0
    assert "spsp_pointers_created_total 0.0" in second.render()


def exposed(metrics: Metrics, name: str, **labels: str) -> str | None:
    """A sample's value as `/metrics` shows it; None when it is absent."""
    for family in text_string_to_metric_families(metrics.render()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return repr(sample.value)
    return None


def test_the_audit_gauges_appear_with_the_first_audit() -> None:
    metrics = Metrics()
    assert exposed(metrics, "spsp_pull_audit_mismatches") is None  # unknown yet, not 0
    at = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    metrics.audit(mismatches=2, at=at, took=timedelta(milliseconds=250), pointers=40)
    assert exposed(metrics, "spsp_pull_audit_mismatches") == "2.0"
    assert exposed(metrics, "spsp_pull_audit_last_run_timestamp_seconds") == "1700000000.0"
    assert exposed(metrics, "spsp_pull_audit_duration_seconds") == "0.25"
    assert exposed(metrics, "spsp_pull_audit_pointers") == "40.0"


async def test_pool_use_is_read_when_scraped(db: Database) -> None:
    def in_use() -> int:
        return db.metrics.value("spsp_db_pool_checked_out", pool="sqlalchemy")

    assert in_use() == 0
    async with db.read() as first:
        await first.execute(select(1))
        assert in_use() == 1
        async with db.read() as second:
            await second.execute(select(1))
            assert in_use() == 2
    assert in_use() == 0


async def test_only_committed_transactions_are_counted(db: Database, clock: ManualClock) -> None:
    counted: list[str] = []

    async def rolled_back() -> None:
        async with db.write() as session:
            after_commit(session, lambda: counted.append("rolled back"))
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        await rolled_back()
    async with db.write() as session:
        after_commit(session, lambda: counted.append("committed"))
        assert counted == []
    assert counted == ["committed"]

    pointer = await harness.pointer(db, clock.now(), amount=1000)
    now = clock.now()
    grant = await reservations.reserve(
        db, pointer.id, 400, kind=ReservationKind.STREAM, now=now, lease=timedelta(seconds=5)
    )
    assert grant is not None
    assert (
        await reservations.reserve(
            db, pointer.id, 700, kind=ReservationKind.STREAM, now=now, lease=timedelta(seconds=5), minimum=700
        )
        is None
    )
    assert db.metrics.value("spsp_reservations_total", event="made") == 1
    recovered = await reservations.recover_expired(db, now=now + timedelta(seconds=6))
    assert [r.reservation_id for r in recovered] == [grant.reservation_id]
    with pytest.raises(reservations.ReservationClosed):
        await reservations.settle(db, grant.reservation_id, 400, now=now)
    assert db.metrics.value("spsp_reservations_total", event="recovered") == 1
    assert db.metrics.value("spsp_reservations_total", event="settled") == 0


async def test_webhook_deliveries_are_counted_by_outcome(
    db: Database,
    clock: ManualClock,
    receiver: Receiver,  # noqa: F811
) -> None:
    await pull_with_webhook(db, clock, receiver.url)
    receiver.statuses = [500, 200]
    hooks = worker(db, clock, max_attempts=2)
    async with hooks:
        assert await hooks.deliver_due() == 1
        clock.advance(timedelta(hours=1))
        assert await hooks.deliver_due() == 1
    dead = await pull_with_webhook(db, clock, "http://127.0.0.1:9/hook")  # the discard port: refused
    assert dead
    hooks = worker(db, clock, max_attempts=1)
    async with hooks:
        assert await hooks.deliver_due() == 1

    def delivered(outcome: str) -> int:
        return db.metrics.value("spsp_webhook_deliveries_total", outcome=outcome)

    assert (delivered("delivered"), delivered("retrying"), delivered("gave-up")) == (1, 1, 1)


async def test_payouts_are_counted_by_the_state_they_enter(
    db: Database,
    bridge_clock: ManualClock,  # noqa: F811
    bitcoind: FakeBitcoind,  # noqa: F811
) -> None:
    now = bridge_clock.now()
    pointer = await harness.pointer(db, now, amount=10_000)
    destination = factories.address(Network.REGTEST, "p2wpkh", "metrics")
    async with harness.running(harness.settings(bitcoind), db, bridge_clock) as bridge:
        offer = await harness.offer(bridge, pointer, destination, amount=DebitUnits(3_000), auto_approve=True)
        assert (await bridge.ledger.transition(offer.id, Trigger.CANCEL, now=now)) is not None
        assert (
            await bridge.ledger.transition(offer.id, Trigger.DISPATCH, now=now) is None
        )  # refused: no count

    def entered(state: str) -> int:
        return db.metrics.value("spsp_payouts_total", state=state)

    assert [entered(s) for s in ("NEW", "QUEUED", "CANCELLED", "IN_FLIGHT")] == [1, 1, 1, 0]
    assert db.metrics.value("spsp_reservations_total", event="released") == 1
