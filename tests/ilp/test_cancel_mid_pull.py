"""A cancel, or a change that leaves less available, reaches a pull already under way within a bounded time:
the pull re-reads its pointer every `PullSettings.terms_check` and every `TERMS_CHECK_PACKETS` fulfilled
packets, and once it sees the change it sends no new Prepare; what is in flight completes and is debited.

A long pull (a pointer of 100,000 packets) runs through the embedded BTP endpoint of a server in this
process to a scripted payee that fulfils every Prepare at once; the cancel or change goes through the HTTP
API, of this server or of a second server process on the same database. What the payee was paid after the
API answered is bounded by what was in flight plus the packets of one check interval; before, the pull went
on to the end of its reservation (up to a chunk of 512 packets).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from harness.server_process import ServerProcess
from spsp_pull.config import Config
from spsp_pull.ilp.node import EmbeddedNode
from spsp_pull.ilp.pull_session import TERMS_CHECK_PACKETS
from spsp_pull.payee import query
from spsp_pull.server import Server, running
from spsp_pull.store import models, pointers
from spsp_pull.store.audit import audit_ledger
from spsp_pull.store.database import Database
from tests.ilp.hostile.databases import process_database, url_of
from tests.ilp.hostile.payee import HostilePayee

ADMIN = "cancel-admin-key"
PACKET = 1_000  # the most one Prepare carries
AMOUNT = 100_000 * PACKET  # far more than the pull gets before the cancel
BEFORE_CANCEL = 200 * PACKET  # paid before the test cancels: past the first chunks
MAX_IN_FLIGHT = 4  # the server's default
# Paid after the API answered, at most: the Prepares in flight when the pull saw the change, those sent
# while it read the pointer, and those of one check interval (the interval's packets counted twice over:
# a fulfilment the pull has not yet been woken for).
AFTER_CANCEL_BOUND = (2 * TERMS_CHECK_PACKETS + 2 * MAX_IN_FLIGHT) * PACKET


@dataclass
class Pull:
    """The payee fulfilling every Prepare of its stream until the server closes it."""

    payee: HostilePayee
    receiving: asyncio.Task[int]

    async def paid_at_least(self, amount: int) -> None:
        for _ in range(1_000):  # 10 s
            if self.payee.paid >= amount or self.receiving.done():
                break
            await asyncio.sleep(0.01)
        assert self.payee.paid >= amount, f"paid only {self.payee.paid}"

    async def ended(self) -> int:
        async with asyncio.timeout(20):
            return await self.receiving


@dataclass
class Setup:
    server: Server
    db: Database
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"

    async def pointer(self) -> str:
        async with self.http.post(
            f"{self.url}/",
            json={
                "amount": str(AMOUNT),
                "assetCode": "XRP",
                "assetScale": 9,
                "interval": "P1D",
                "cycles": 1,
                "cap": False,
            },
            headers=auth(),
        ) as response:
            assert response.status == 201, await response.text()
            return str((await response.json())["token"])

    async def pull(self, token: str) -> Pull:
        details = await query(f"{self.url}/{token}", session=self.http)
        assert isinstance(self.server.node, EmbeddedNode)
        url = f"ws://127.0.0.1:{self.server.node.btp_port}"
        payee = await HostilePayee.join(url, "payee", details.destination_account, details.shared_secret)
        await payee.open_stream()
        return Pull(payee, asyncio.get_running_loop().create_task(payee.receive_until_closed()))

    async def debited(self, token: str) -> int:
        """The pointer's pulled_total once no reservation of it is open and no stream holds its lease."""
        for _ in range(1_000):  # 20 s
            record = await pointers.find_by_token(self.db, token)
            assert record is not None
            if record.reserved_total == 0:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the pull's reservations are still open")
        report = await audit_ledger(self.db, now=datetime.now(UTC))
        assert report.clean, report.to_json()
        return record.usage.pulled_total


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


@asynccontextmanager
async def serving(backend: str, data_dir: Path) -> AsyncIterator[tuple[Setup, str]]:
    """A server in this process on `backend` (yields it and the database URL for a second process)."""
    async with process_database(backend, data_dir) as url:
        config = Config(
            data_dir=data_dir,
            database_url=url or None,
            port=0,
            btp_port=0,
            auth_token=ADMIN,
            max_packet_amount=PACKET,
        )
        db = Database(url_of(backend, data_dir, url))
        try:
            async with (
                running(config, announce=lambda _line: None) as server,
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http,
            ):
                yield Setup(server, db, http), url
        finally:
            await db.close()


async def cancel(http: aiohttp.ClientSession, url: str, token: str) -> None:
    async with http.delete(f"{url}/pointers/{token}", headers=auth()) as response:
        assert response.status == 200, await response.text()


async def end_agreement(http: aiohttp.ClientSession, url: str, token: str) -> None:
    """A change that leaves nothing available: the amount cut to one unit."""
    async with http.patch(f"{url}/pointers/{token}", json={"amount": "1"}, headers=auth()) as response:
        assert response.status == 200, await response.text()


async def pause(http: aiohttp.ClientSession, url: str, token: str) -> None:
    """The payer's pause: a new version, seen by the pull as a cancel is."""
    async with http.patch(f"{url}/pointers/{token}", json={"paused": True}, headers=auth()) as response:
        assert response.status == 200, await response.text()


Change = Callable[[aiohttp.ClientSession, str, str], Awaitable[None]]


async def stops_the_pull(s: Setup, change: Change, api_url: str) -> None:
    """Run a long pull, apply `change` through the API at `api_url` mid-pull, and check what left after."""
    token = await s.pointer()
    pull = await s.pull(token)
    async with pull.payee:
        await pull.paid_at_least(BEFORE_CANCEL)
        assert not pull.receiving.done()
        await change(s.http, api_url, token)
        paid_at_change = pull.payee.paid
        received = await pull.ended()  # the server closed the stream
    after = pull.payee.paid - paid_at_change
    assert after <= AFTER_CANCEL_BOUND, f"{after} left after the change"
    debited = await s.debited(token)
    assert received == pull.payee.paid <= debited <= AMOUNT
    assert debited == pull.payee.paid  # every Fulfill debited, nothing more


@pytest.mark.parametrize("change", [cancel, end_agreement, pause], ids=["cancel", "change", "pause"])
async def test_a_cancel_or_change_through_this_server_stops_a_running_pull(
    backend: str, tmp_path: Path, change: Change
) -> None:
    async with serving(backend, tmp_path / "data") as (s, _url):
        await stops_the_pull(s, change, s.url)


async def test_a_cancel_through_another_server_process_stops_a_running_pull(
    backend: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    async with serving(backend, data_dir) as (s, url):
        env = {"SPSP_AUTH_TOKEN": ADMIN, **({"SPSP_DATABASE_URL": url} if url else {})}
        async with ServerProcess(data_dir, env=env) as other:
            await stops_the_pull(s, cancel, other.url)


async def reservations_made(db: Database, token: str) -> int:
    record = await pointers.find_by_token(db, token)
    assert record is not None
    async with db.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(models.Reservation)
            .where(models.Reservation.pointer_id == record.id)
        )
    return int(count or 0)


async def test_a_change_that_leaves_more_available_lets_the_pull_go_on(backend: str, tmp_path: Path) -> None:
    """The pull settles what it holds once on the change and goes on under the new terms: 1,000 packets
    later it has made a few reservations of its largest chunk (512 packets), not one per check."""
    async with serving(backend, tmp_path / "data") as (s, _url):
        token = await s.pointer()
        pull = await s.pull(token)
        async with pull.payee:
            await pull.paid_at_least(BEFORE_CANCEL)
            async with s.http.patch(
                f"{s.url}/pointers/{token}", json={"amount": str(2 * AMOUNT)}, headers=auth()
            ) as response:
                assert response.status == 200, await response.text()
            made_at_change, paid_at_change = await reservations_made(s.db, token), pull.payee.paid
            await pull.paid_at_least(paid_at_change + 1_000 * PACKET)
            assert await reservations_made(s.db, token) - made_at_change <= 5
            await cancel(s.http, s.url, token)
            await pull.ended()
        debited = await s.debited(token)
        assert debited == pull.payee.paid <= 2 * AMOUNT
